"""The harness's code as one digest: which code made a record, and a guard against mixing two.

A grid whose code changes on disk while it runs (an edit, a `git pull`) would otherwise run its
later cells, and resume its checkpoints, with code its earlier cells never saw, and say nothing:
workers import modules from disk as they need them. So the runner takes the digest when it starts
and every worker compares before its cell (bench/execution/executor.py), a checkpoint is resumed
only by the code that wrote it (bench/evaluation/checkpoint.py), and every record carries the
digest of the code that made it (`code_digest`).
"""
from __future__ import annotations

import hashlib
from pathlib import Path

from bench import REPO_ROOT

# The packages whose code decides a cell's numbers (bench.reporting included: one digest is
# simpler to trust than a list of modules that cannot matter)
PACKAGES = ("bench", "methods", "streams")


def code_files(root: Path = REPO_ROOT) -> dict[str, str]:
    """{path relative to root: sha256 of its bytes} for every .py file of PACKAGES."""
    return {str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
            for package in PACKAGES for path in sorted((root / package).rglob("*.py"))}


def code_digest(root: Path = REPO_ROOT) -> str:
    """16 hex digits over the files' paths and contents: equal digests, the same code."""
    files = code_files(root)
    return hashlib.sha256("\n".join(f"{p} {h}" for p, h in sorted(files.items())).encode()).hexdigest()[:16]


class CodeChanged(RuntimeError):
    """The code on disk is not the code the grid started with."""


def check_unchanged(expected: str | None) -> None:
    """Raise CodeChanged unless the code on disk has the runner's digest (`expected`; None: no check)."""
    if expected is None:
        return
    now = code_digest()
    if now != expected:
        raise CodeChanged(f"the harness's code changed on disk since this grid started (digest {expected}, now "
                          f"{now}): its cells would run code the finished ones did not. Rerun the command: "
                          "finished cells are kept, the rest run with the code as it is now")
