"""The path of one ``/ami share``: which of amibot's modules and functions one request
crosses, from the signed HTTP command to the final message, and which modules call
each other both ways (callbacks going back and forth: the issue 14 measure).

Runs the offline stack (sandbox, local Slack, the real bot over HTTP), profiles every
thread while one encrypted share is asked, approved and finished, and prints the
product modules (bot/, handlers/, aws/) and functions that ran.
"""

from __future__ import annotations

import os
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
os.environ.setdefault("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")

from offline import rehearsal  # noqa: E402
from offline.demo import offline_stack  # noqa: E402

PACKAGES = ("bot", "handlers", "aws")


def main() -> None:
    seen: set[tuple[str, str]] = set()
    edges: set[tuple[str, str]] = set()  # (caller module, callee module), product modules only
    recording = threading.Event()

    def product(frame) -> str | None:  # noqa: ANN001
        rel = os.path.relpath(frame.f_code.co_filename, ROOT)
        return rel if rel.startswith(PACKAGES) and not rel.startswith("..") else None

    def profile(frame, event, arg):  # noqa: ANN001
        if event != "call" or not recording.is_set():
            return
        rel = product(frame)
        if rel:
            seen.add((rel, frame.f_code.co_qualname))
            caller = frame.f_back
            # The nearest product frame up the stack calls this one (library frames between are skipped).
            while caller is not None and product(caller) is None:
                caller = caller.f_back
            if caller is not None and product(caller) != rel:
                edges.add((product(caller), rel))

    # Every thread the stack starts is profiled from its start; only the request's span is recorded.
    threading.setprofile(profile)
    sys.setprofile(profile)
    with offline_stack(grant_wait_seconds=2, sleep=lambda s: time.sleep(min(s, 0.05)), tick_seconds=3600, notifier_poll_seconds=0.05) as stack:
        image = stack.world.encrypted_image
        recording.set()
        stack.slack.slash(rehearsal.REQUESTER, rehearsal.CHANNEL, f"share {image} from prod to dev")
        root = stack.fake.wait_for(lambda: next((m for m in stack.fake.messages(rehearsal.CHANNEL) if image in (m.get("text") or "") and not m.get("thread_ts")), None), 30)
        request_id = root["text"].split(":")[0]
        stack.slack.click(rehearsal.OWNER, rehearsal.CHANNEL, root["ts"], "amibot_approve", request_id)
        stack.fake.wait_for(lambda: next((m for m in stack.fake.thread(rehearsal.CHANNEL, root["ts"]) if m.get("reply_broadcast")), None), 60)
        stack.bot.worker.drain()
        recording.clear()
    sys.setprofile(None)
    threading.setprofile(None)
    modules = sorted({m for m, _ in seen})
    both_ways = sorted({tuple(sorted(e)) for e in edges if (e[1], e[0]) in edges})
    print(f"one /ami share crossed {len(modules)} product modules and {len(seen)} functions; "
          f"{len(edges)} module-to-module calls, {len(both_ways)} pairs of modules calling each other (back and forth)")
    for a, b in both_ways:
        print(f"  back and forth: {a} <-> {b}")
    for module in modules:
        print(f"  {module}: {sum(1 for m, _ in seen if m == module)}")


if __name__ == "__main__":
    main()
