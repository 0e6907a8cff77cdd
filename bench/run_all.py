"""``make bench``: every benchmark, each beside its baseline measured in the same run;
writes ``bench/results.json`` and the table in ``BENCHMARKS.md``.

Each benchmark runs in a process of its own (so one's threads and memory do not
colour another's numbers). ``--only NAME[,NAME]`` reruns some and keeps the others'
last results from ``bench/results.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
RESULTS = os.path.join(HERE, "results.json")
BENCHMARKS = ("ack_http", "memory_startup", "polling", "slack_burst", "preflight_latency")

RUNNER = """
import json, logging, sys
logging.disable(logging.WARNING)
sys.path.insert(0, {here!r})
import {name}
print("@@RESULT@@" + json.dumps({name}.run()))
"""


def run_one(name: str) -> dict:
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", RUNNER.format(here=HERE, name=name)], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "AMIBOT_LOG_LEVEL": "WARNING", "MOTO_EC2_LOAD_DEFAULT_AMIS": "false"})
    line = next((l for l in proc.stdout.splitlines() if l.startswith("@@RESULT@@")), None)
    if proc.returncode != 0 or line is None:
        sys.stderr.write(proc.stdout[-3000:] + proc.stderr[-5000:])
        raise SystemExit(f"benchmark {name} failed (exit {proc.returncode})")
    result = json.loads(line[len("@@RESULT@@"):])
    result["wall_seconds"] = round(time.monotonic() - started, 1)
    result.setdefault("load_average_at_end", [round(x, 2) for x in os.getloadavg()])
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", help="comma-separated subset of: " + ", ".join(BENCHMARKS))
    parser.add_argument("--results", default=RESULTS, help="results file (default bench/results.json)")
    args = parser.parse_args(argv)
    results_path = args.results
    names = args.only.split(",") if args.only else list(BENCHMARKS)
    results = {}
    if args.only and os.path.exists(results_path):
        with open(results_path) as handle:
            results = json.load(handle)
    results["machine"] = {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform(),
                          "load_average_at_start": [round(x, 2) for x in os.getloadavg()]}
    for name in names:
        print(f"running {name} ...", flush=True)
        results[name] = run_one(name)
        with open(results_path, "w") as handle:
            json.dump(results, handle, indent=2)
            handle.write("\n")
    from report import write_benchmarks_md

    write_benchmarks_md(results, os.path.join(ROOT, "BENCHMARKS.md"))
    print(f"wrote {results_path} and BENCHMARKS.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
