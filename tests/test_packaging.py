"""Dependencies and the image: bounded, locked with hashes, base pinned by digest."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _name(requirement: str) -> str:
    return re.split(r"[\[<>=!~ ;]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def test_every_direct_dependency_has_an_upper_bound_on_its_major_version():
    project = _pyproject()["project"]
    requirements = list(project["dependencies"]) + [r for extra in project["optional-dependencies"].values() for r in extra]
    unbounded = [r for r in requirements if "<" not in r]
    assert not unbounded, f"add an upper bound (e.g. <N+1) to: {unbounded}"


def test_the_lock_pins_every_runtime_dependency_with_hashes():
    lock = (ROOT / "requirements.lock").read_text()
    pinned = {m.group(1).lower() for m in re.finditer(r"^([A-Za-z0-9_.-]+)==\S+ \\$", lock, re.M)}
    for requirement in _pyproject()["project"]["dependencies"]:
        assert _name(requirement) in pinned, f"{requirement} not in requirements.lock: run `make lock`"
    pins = re.findall(r"^[A-Za-z0-9_.-]+==\S+", lock, re.M)
    hashed = re.findall(r"^[A-Za-z0-9_.-]+==\S+ \\\n(?:\s+--hash=sha256:[0-9a-f]{64}(?: \\)?\n)+", lock, re.M)
    assert pins and len(hashed) == len(pins), "every pin in requirements.lock needs its hashes: run `make lock`"


def test_the_image_installs_the_lock_and_pins_its_base_by_digest():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.11-slim@sha256:[0-9a-f]{64}$", dockerfile, re.M)
    assert re.search(r"^FROM \$\{PYTHON_IMAGE\}$", dockerfile, re.M)
    assert "pip install --no-cache-dir --require-hashes -r requirements.lock" in dockerfile
    # The build backend comes from the lock, hashed (issue 17): no isolated build env.
    assert "pip install --no-cache-dir --no-deps --no-build-isolation ." in dockerfile
    lock = (ROOT / "requirements.lock").read_text()
    assert re.search(r"^setuptools==\S+ \\\n\s+--hash=sha256:", lock, re.M), "setuptools (the build backend) must be in the lock: make lock"


def test_build_output_is_ignored():
    assert "build/" in (ROOT / ".gitignore").read_text().split()
