"""The harness's code as one digest: which code made a record, and a guard against mixing two.

A grid whose code changes on disk while it runs (an edit, a `git pull`) would otherwise run its
later cells, and resume its checkpoints, with code its earlier cells never saw, and say nothing:
workers import modules from disk as they need them. So the runner takes the digest when it starts
and every worker compares before its cell (bench/execution/executor.py), a checkpoint is resumed
only by the code that wrote it (bench/evaluation/checkpoint.py), and every record carries the
digest of the code that made it (`code_digest`). The guard holds within one run: rerunning after
a refusal runs the remaining cells with the new code, on purpose, and each record says which.
"""
from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

from bench import REPO_ROOT

# The packages whose files decide a cell's numbers: their Python, the NLL kernel's C source and the
# shipped FID classifiers (bench.reporting included: one digest is simpler to trust than a list
# of modules that cannot matter)
PACKAGES = ("bench", "methods", "streams")


def file_hash(path: Path) -> str:
    """sha256 of the file's bytes; 'unreadable' for one that vanished or cannot be read (a file
    replaced mid-`git pull`): the digest then differs from the one taken before."""
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return "unreadable"


def package_files(root: Path) -> list[Path]:
    """Every regular file of PACKAGES, without caches and hidden files (an editor's lock file)."""
    return [path for package in PACKAGES for path in sorted((root / package).rglob("*"))
            if "__pycache__" not in path.parts and not path.name.startswith(".")
            and path.suffix not in (".pyc", ".so", ".o") and path.is_file()]


def imported_files() -> list[Path]:
    """The user's method and stream files named by `bench.run --import` ($OCM_BENCH_IMPORTS): a
    path as it is, a module name by where it would be imported from."""
    from methods.core.user_methods import is_path, recorded_imports

    files = []
    for source in recorded_imports():
        if is_path(source):
            files.append(Path(source))
            continue
        try:
            spec = importlib.util.find_spec(source)
        except (ImportError, ValueError):
            spec = None
        if spec is not None and spec.origin and Path(spec.origin).is_file():
            files.append(Path(spec.origin))
    return files


def code_files(root: Path = REPO_ROOT) -> dict[str, str]:
    """{path (relative to root for the packages, absolute for imported files): sha256}."""
    files = {str(path.relative_to(root)): file_hash(path) for path in package_files(root)}
    files.update({str(path): file_hash(path) for path in imported_files()})
    return files


def code_digest(root: Path = REPO_ROOT) -> str:
    """16 hex digits over the files' paths and contents: equal digests, the same files."""
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
                          "finished cells are kept, the rest run with the code as it is now (each record's "
                          "code_digest says which code made it)")
