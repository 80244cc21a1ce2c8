"""Methods and streams defined outside this project: imported modules that call `register_method`
(methods/core/registry.py) or `register_stream` (streams/registry.py).

Two ways in: `bench.run --import MODULE` (a dotted module name or a path to a .py file), and the
`ocm_bench.methods` and `ocm_bench.streams` entry point groups of installed packages, each entry
point naming a module (or an object in it) whose import registers its methods or streams:

    [project.entry-points."ocm_bench.methods"]
    my_methods = "my_package.methods"
    [project.entry-points."ocm_bench.streams"]
    my_streams = "my_package.streams"

Cells also run in spawned processes and on Ray/Slurm, which do not inherit the registry: so
`--import` names its modules in $OCM_BENCH_IMPORTS (os.pathsep-separated, files as absolute paths),
and `get_method` and `get_stream_spec` load the entry points and that variable's modules (each once)
before they call a name unknown.
"""
from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import importlib.util
import os
import re
import sys
import traceback
from pathlib import Path
from types import ModuleType

ENV_VAR = "OCM_BENCH_IMPORTS"
ENTRY_POINT_GROUP = "ocm_bench.methods"
STREAM_ENTRY_POINT_GROUP = "ocm_bench.streams"
ENTRY_POINT_GROUPS = (ENTRY_POINT_GROUP, STREAM_ENTRY_POINT_GROUP)
FILE_PACKAGE = "ocm_user"   # modules imported from a file path are named ocm_user.<file stem>

_entry_points_seen: dict[tuple[str, str], str | None] = {}   # (name, value) -> problem, or None
_env_problems: dict[str, str] = {}                           # source -> why it did not import
_registered = 0   # methods and presets registered so far (to tell an --import that registered none)


def _stream_hooks() -> list:
    from streams.registry import UNKNOWN_NAME_HOOKS

    return UNKNOWN_NAME_HOOKS


def count_registration() -> None:
    """The method registry registered (or re-registered) a method or a preset."""
    global _registered
    _registered += 1


def registrations() -> int:
    """How many names have been registered (or re-registered) in this process, in every registry:
    methods, presets, streams, datasets, metrics, extractors (streams/names.py counts them)."""
    from streams.names import registrations as names_registered

    return _registered + names_registered()


class UserModuleError(ValueError):
    """A module given to --import (or named in $OCM_BENCH_IMPORTS) that could not be imported."""


def is_path(source: str) -> bool:
    return source.endswith(".py") or "/" in source or os.sep in source


def _where(err: BaseException, path: Path | None = None) -> str:
    """' (file, line N)' where the error arose: the innermost frame in the imported file `path`
    (the user's line, not the harness's check it called), else the innermost frame."""
    frames = list(traceback.extract_tb(err.__traceback__))
    if path is not None:
        frames = [f for f in frames if Path(f.filename).resolve() == path] or frames
    return f" ({frames[-1].filename}, line {frames[-1].lineno})" if frames else ""


def _module_name(path: Path) -> str:
    """ocm_user.<stem>, or with a hash of the path when another file took that name."""
    stem = "".join(c if c.isalnum() or c == "_" else "_" for c in path.stem)
    name = f"{FILE_PACKAGE}.{stem}"
    loaded = sys.modules.get(name)
    if loaded is None or Path(getattr(loaded, "__file__", "") or "").resolve() == path:
        return name
    return f"{name}_{hashlib.sha1(str(path).encode()).hexdigest()[:8]}"


def _import_file(source: str) -> ModuleType:
    path = Path(source).expanduser()
    if not path.is_file():
        raise UserModuleError(f"--import '{source}': no such file" if not path.exists()
                              else f"--import '{source}': not a file")
    path = path.resolve()
    name = _module_name(path)
    if name in sys.modules:   # imported already (idempotent)
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise UserModuleError(f"--import '{source}': not a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module   # before running it: dataclasses look their module up there
    try:
        spec.loader.exec_module(module)
    except BaseException as err:
        del sys.modules[name]
        if isinstance(err, (KeyboardInterrupt, SystemExit)):
            raise
        raise UserModuleError(f"--import '{source}' failed: {type(err).__name__}: {err}{_where(err, path)}") from err
    return module


def _import_dotted(source: str) -> ModuleType:
    if not all(part.isidentifier() for part in source.split(".")):
        raise UserModuleError(f"--import '{source}': neither a dotted module name nor a path to a .py file")
    if os.getcwd() not in sys.path and "" not in sys.path:   # as `python -m` would (console script)
        sys.path.append(os.getcwd())
    try:
        return importlib.import_module(source)
    except ModuleNotFoundError as err:
        if err.name and (source == err.name or source.startswith(err.name + ".")):
            raise UserModuleError(f"--import '{source}': no module named '{err.name}' (give a module "
                                  "importable from here, or a path to a .py file)") from err
        raise UserModuleError(f"--import '{source}' failed: {type(err).__name__}: {err}{_where(err)}") from err
    except Exception as err:  # noqa: BLE001 - whatever the module raised, reported as bad input
        raise UserModuleError(f"--import '{source}' failed: {type(err).__name__}: {err}{_where(err)}") from err


def import_source(source: str) -> ModuleType:
    """Import `source` (a dotted module name or a path to a .py file) once; raises UserModuleError."""
    source = source.strip()
    if not source:
        raise UserModuleError("--import needs a module name or a path to a .py file")
    return _import_file(source) if is_path(source) else _import_dotted(source)


def recorded_imports() -> list[str]:
    return [s for s in os.environ.get(ENV_VAR, "").split(os.pathsep) if s.strip()]


def record_imports(sources: list[str]) -> None:
    """Name `sources` in $OCM_BENCH_IMPORTS (files as absolute paths), for worker processes."""
    wanted = recorded_imports() + [str(Path(s).expanduser().resolve()) if is_path(s) else s.strip()
                                   for s in sources]
    if wanted:
        os.environ[ENV_VAR] = os.pathsep.join(dict.fromkeys(wanted))


def import_modules(sources: list[str], warn=None) -> list[ModuleType]:
    """`bench.run --import`: import each source, then record them all for the workers. A module
    imported here for the first time that registers no method, preset or stream is reported to
    `warn` (a callable taking the message), since naming its methods would then fail."""
    modules = []
    for source in sources:
        before, loaded = registrations(), set(sys.modules)
        module = import_source(source)
        if warn is not None and registrations() == before and module.__name__ not in loaded:
            warn(f"--import '{source}' registered nothing (no method, stream, metric, extractor or executor): a method is a GenerativePlugin "
                 "subclass decorated with @register_method(NAME, Config, description) (examples/my_method.py), "
                 "a stream a register_stream(NAME, datasets, tasks) call (examples/cross_domain.py)")
        modules.append(module)
    record_imports(sources)
    return modules


SKIPPED_FOLDERS = {".git", ".venv", "venv", "env", "node_modules", "__pycache__", "site-packages", "data",
                   "results", "build", "dist"}


def files_registering(name: str, root: str | os.PathLike | None = None, limit: int = 400) -> list[str]:
    """Python files in `root` (default: here) and its subfolders, two levels deep, whose text
    registers a method called `name` (`register_method("name", ...)`): the --import a user may
    have forgotten. Paths relative to `root`; at most `limit` files are read."""
    base = Path(root or os.getcwd())
    pattern = re.compile(r"register_method\(\s*[\"']" + re.escape(name) + r"[\"']")
    found: list[str] = []
    read = 0
    for depth in ("*.py", "*/*.py", "*/*/*.py"):
        for path in sorted(base.glob(depth)):
            parts = path.relative_to(base).parts
            if any(p in SKIPPED_FOLDERS or p.startswith(".") for p in parts[:-1]):
                continue
            if parts[0] == "methods" and len(parts) == 2:   # the harness's own methods are declared
                continue
            read += 1
            if read > limit:
                return found
            try:
                if pattern.search(path.read_text(errors="ignore")):
                    found.append(str(path.relative_to(base)))
            except OSError:
                continue
    return found


def load_entry_points() -> list[str]:
    """Load the `ocm_bench.methods` and `ocm_bench.streams` entry points of installed packages, each
    once; returns why any could not be loaded (a broken plugin package does not stop the others)."""
    for group in ENTRY_POINT_GROUPS:
        for ep in importlib.metadata.entry_points(group=group):
            key = (ep.name, ep.value)
            if key in _entry_points_seen:
                continue
            try:
                ep.load()
                _entry_points_seen[key] = None
            except Exception as err:  # noqa: BLE001
                _entry_points_seen[key] = (f"entry point '{ep.name} = {ep.value}' ({group}): "
                                           f"{type(err).__name__}: {err}")
    return [p for p in _entry_points_seen.values() if p]


def load_env_imports() -> list[str]:
    """Import the modules named in $OCM_BENCH_IMPORTS (each once; a failure is not retried)."""
    for source in recorded_imports():
        if source not in _env_problems:
            try:
                import_source(source)
            except UserModuleError as err:
                _env_problems[source] = f"${ENV_VAR}: {err}"
    return [p for s, p in _env_problems.items() if s in recorded_imports()]


def load_all() -> list[str]:
    """Entry points, then $OCM_BENCH_IMPORTS; returns the problems (empty when all loaded)."""
    return load_entry_points() + load_env_imports()


# A stream name unknown to the stream registry (a worker that has not imported the user's modules
# yet) loads them first, as a method name does (streams cannot import this module: it registers here).
if load_all not in _stream_hooks():
    _stream_hooks().append(load_all)
