"""`python -m bench.run`: run a methods x streams x seeds grid and print its NLL table.

Finished cells are never run twice (their records are content-keyed); `--force` reruns them.
Cells run on the local process pool, on Ray or on Slurm; runners sharing a results directory
never run one cell at the same time (atomic claims). `python -m bench.status DIR` shows progress.
Exit codes: 0 all cells done; 1 some cells failed (listed, each with the file holding its
traceback); 2 bad input (refused before any cell runs, with one line saying what to do); 3 cells
left to a live runner elsewhere (--no-wait; listed); 130 interrupted (Ctrl-C: the finished cells
are kept, rerun the same command to resume). Never 0 while a cell of the grid has no finished
record.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

from bench.planning.defaults import DEFAULT_GRID as DEFAULTS
from methods.core.training_step import TRAINING_STEPS


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m bench.run", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--methods", default=DEFAULTS["methods"],
                   help="comma-separated method names, or 'all'; a method with its own settings is "
                        "written METHOD[k=v,...], e.g. 'reservoir[budget=match:ocm]' (the budget = "
                        "ocm's peak memory on the same stream, seed and profile) (default: %(default)s)")
    p.add_argument("--streams", default=DEFAULTS["streams"],
                   help="comma-separated stream names, or 'all' (default: %(default)s)")
    p.add_argument("--seeds", default=DEFAULTS["seeds"], help="comma-separated seeds (default: %(default)s)")
    p.add_argument("--profile", default=DEFAULTS["profile"],
                   help="smoke | quick | paper (default: %(default)s); see bench/planning/profiles.py")
    p.add_argument("--set", dest="settings", action="append", default=[], metavar="KEY=VALUE",
                   help="override a profile setting (e.g. epochs=2) or a method setting "
                        "(e.g. reservoir.budget=500); repeatable")
    p.add_argument("--sweep", action="append", default=[], metavar="KEY=V1,V2,...",
                   help="run the grid at every value of a setting (profile or METHOD.OPTION); "
                        "repeatable: every combination runs, each under its own profile label "
                        "(e.g. --sweep epochs=1,3,10 --sweep lr=0.001,0.0001)")
    p.add_argument("--fid-features", choices=["classifier", "inception", "none"], default=None,
                   help="FID feature extractor (default: the profile's; quick: classifier); "
                        "'none' skips FID. Same as --set fid_features=...")
    p.add_argument("--out", default=DEFAULTS["out"], help="results directory (default: %(default)s)")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                   help="parallel worker processes, one torch thread each (default: cores = %(default)s)")
    p.add_argument("--executor", choices=["local", "ray", "slurm"], default="local",
                   help="local process pool (default), Ray (pip install '.[ray]') or Slurm via "
                        "submitit (pip install '.[slurm]'); any of them can share a results dir")
    p.add_argument("--ray-address", default=None, help="join this Ray cluster (default: a local Ray)")
    p.add_argument("--slurm-partition", default=None)
    p.add_argument("--slurm-time", type=int, default=60, help="minutes per cell (default: %(default)s)")
    p.add_argument("--device", default="auto",
                   help="auto | cpu | cuda | cuda:N (default: auto = the GPU for the paper profile "
                        "when there is one, else the CPU); resolved in each worker, and recorded")
    p.add_argument("--training-step", dest="training_step", default="auto", choices=TRAINING_STEPS,
                   help="how a training step runs (default: auto = a captured CUDA graph on a GPU, the "
                        "fused step elsewhere, eager for methods with per-step callbacks); recorded")
    p.add_argument("--cells-per-gpu", dest="cells_per_gpu", type=int, default=None,
                   help="GPU cells run at once on each GPU, each started on its own cuda:i (local and "
                        "Ray executors; default: the --workers spread over the visible GPUs). At most "
                        "--workers cells run at once in all: give --workers N x GPUs or more")
    p.add_argument("--gpus-per-cell", "--slurm-gpus", dest="gpus_per_cell", type=float, default=None,
                   help="GPUs each Ray task / Slurm job asks for (Ray takes fractions, e.g. 0.25 "
                        "packs four cells per GPU); default 1 for GPU cells, else 0")
    p.add_argument("--slurm-cluster", default=None,
                   help="submitit cluster: default auto (Slurm when available); 'local' runs the "
                        "job array on this machine")
    p.add_argument("--data-dir", default=None,
                   help="where dataset files are (default: $BENCH_DATA_DIR or ./data)")
    p.add_argument("--force", action="store_true", help="rerun cells that already have a record")
    p.add_argument("--no-wait", action="store_true",
                   help="do not wait for cells that a live runner elsewhere is running: exit 3 and "
                        "list them (default: wait, showing which runner holds them)")
    p.add_argument("--import", dest="imports", action="append", default=[], metavar="MODULE",
                   help="import a module that registers methods (`from methods import GenerativePlugin, "
                        "register_method`): a dotted module name or a path to a .py file, e.g. "
                        "examples/my_method.py; repeatable. Worker processes import it too "
                        "($OCM_BENCH_IMPORTS). Installed packages register through the "
                        "'ocm_bench.methods' entry point group instead")
    p.add_argument("--list", action="store_true", help="list methods, streams and profiles, then exit")
    p.add_argument("--no-progress", action="store_true",
                   help="no progress bar (there is none anyway when stderr is not a terminal)")
    p.add_argument("--wide", action="store_true",
                   help="print the run's table with every column (SE, KID, P/R/D/C, BWT, images trained, "
                        "seeds, seconds); by default it fits 120 columns, and results/summary.csv has all")
    return p


def list_everything() -> str:
    from bench.planning.profiles import PROFILES
    from methods import METHODS, PRESETS
    from streams import STREAMS

    lines = ["methods:"]
    for spec in METHODS.values():
        mark = " (needs task boundaries)" if spec.needs_task_boundaries else ""
        lines.append(f"  {spec.name:<15} {spec.description}{mark}")
    lines.append("presets (named variants; add settings as NAME[setting=value]):")
    lines += [f"  {p.name:<15} = {p.expansion}: {p.description}" for p in PRESETS.values()]
    lines.append("streams:")
    lines += [f"  {s.name:<14} {s.description}" for s in STREAMS.values()]
    lines.append("profiles:")
    lines += [f"  {p.name:<8} E={p.epochs}, MC={p.mc_samples}, lr={p.lr}, K={p.eval_k}"
              for p in PROFILES.values()]
    return "\n".join(lines)


def sweep_combinations(sweeps: list[str]) -> list[list[str]]:
    """['epochs=1,3', 'lr=0.001,0.0001'] -> every combination as a list of settings."""
    import itertools

    from methods.core.labels import split_top_level

    axes = []
    for item in sweeps:
        key, sep, values = item.partition("=")
        values = split_top_level(values)
        if not sep or not key or not values:
            raise ValueError(f"--sweep '{item}' is not of the form KEY=V1,V2,...")
        axes.append([f"{key}={v}" for v in values])
    return [list(combo) for combo in itertools.product(*axes)] if axes else [[]]


def check_writable(folder) -> None:
    """Refuse, before anything runs, a results directory that cannot be created or written."""
    import tempfile

    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-test-"):
            pass
    except OSError as err:
        raise ValueError(f"cannot write results to '{folder}': {err.strerror or err}") from None


def holder(info: dict) -> str:
    return f"pid {info.get('pid', '?')} on {info.get('host', '?')}"


def wait_for_other_runners(cells, store, run, poll_seconds: float = 2.0, repeat_seconds: float = 30.0) -> None:
    """Wait for `cells`, which live runners elsewhere held when this one came to them, saying which
    and where; a cell whose runner let go of it without a finished record (it died, or its cell
    failed there) is run here, once."""
    from bench.execution.claims import live_claims

    waiting, said, said_at = list(cells), None, 0.0
    while waiting:
        held = live_claims(store.root)
        free = [c for c in waiting if store.path(c).stem not in held and not store.is_done(c)]
        if free:
            run(free)
        waiting = [c for c in waiting if not store.is_done(c) and c not in free]
        if not waiting:
            return
        line = (f"waiting for {len(waiting)} cell(s) run by another runner: "
                + ", ".join(f"{c.label} ({holder(held.get(store.path(c).stem, {}))})" for c in waiting[:5])
                + (" ..." if len(waiting) > 5 else ""))
        if line != said or time.time() - said_at > repeat_seconds:
            print(line, file=sys.stderr)
            said, said_at = line, time.time()
        time.sleep(poll_seconds)


def check_matches_possible(waiting, ready, records) -> None:
    """Refuse, before anything runs, a matched budget whose reference is neither recorded nor in
    this grid."""
    from bench.planning.grid import missing_reference, reference_record

    planned = {(c.method, c.stream, c.seed, c.profile.name) for c in ready if not c.variant}
    for cell in waiting:
        for setting, reference in cell.unresolved.items():
            if ((reference, cell.stream, cell.seed, cell.profile.name) not in planned
                    and reference_record(cell, reference, records) is None):
                raise missing_reference(cell, setting, reference)


class Progress:
    """What a run has got to, for the line an interrupted run (Ctrl-C) ends with."""
    store = None
    cells: list = []


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    progress = Progress()
    try:
        return run_grid(args, progress)
    except KeyboardInterrupt:
        print(interrupted_line(progress), file=sys.stderr)
        return 130


def interrupted_line(progress: Progress) -> str:
    """One line: how far an interrupted run got and how to resume it."""
    if progress.store is None or not progress.cells:
        return "interrupted (Ctrl-C) before any cell ran"
    done = sum(progress.store.is_done(c) for c in progress.cells)
    return (f"interrupted (Ctrl-C): {done} of {len(progress.cells)} cells done, their records kept in "
            f"{progress.store.root}; rerun the same command to resume")


def data_files(streams: list[str], data_dir) -> None:
    """Refuse missing or corrupt dataset files (reading the files only: no torch)."""
    from streams import get_stream_spec
    from streams.datasets import check_dataset

    for name in dict.fromkeys(d for stream in streams for d in get_stream_spec(stream).datasets):
        check_dataset(name, data_dir)


def fid_samples_feasible(profiles) -> None:
    """Refuse (before torch is imported) fewer FID samples than the extractor has features."""
    from bench.evaluation import FEATURE_DIMS

    for profile in profiles:
        dim = FEATURE_DIMS.get(profile.fid_features)
        if dim is not None and profile.fid_samples < dim:
            raise ValueError(f"FID needs at least as many generated samples as feature dimensions: "
                             f"fid_samples={profile.fid_samples} < {dim} ({profile.fid_features} features); "
                             f"give --set fid_samples={dim} or more, or --fid-features none")


def failure_lines(failed, store) -> list[str]:
    """'  label: error (traceback in FILE)' per failed cell, then how to print the tracebacks."""
    lines, traced = [], False
    for cell, error in failed:
        record = store.load(cell)
        where = ""
        if record is not None and record.traceback:
            where, traced = f" (traceback in {store.path(cell)})", True
        lines.append(f"  {cell.label}: {error}{where}")
    if traced:
        lines.append(f"tracebacks: python -m bench.status {store.root} --tracebacks")
    return lines


def run_grid(args, progress: Progress) -> int:
    # Everything up to the first cell is checked without torch (seconds, not ten): names, settings,
    # devices, the results directory, dataset files; torch comes in with the data and the cells.
    from bench.evaluation.device import DeviceUnavailableError, check_choice, no_gpu_reason
    from bench.execution.store import ResultStore
    from bench.planning.grid import MatchError, expand_grid, parse_names, parse_seeds, resolve_matches
    from bench.planning.profiles import resolve_profile
    from methods import METHODS
    from methods.core.user_methods import UserModuleError, import_modules, load_all
    from streams import STREAMS, UnknownNameError
    from streams.datasets import DatasetMissingError
    from streams.idx import CorruptDatasetError

    def warn(message: str) -> None:
        print(f"warning: {message}", file=sys.stderr)

    for problem in load_all():   # installed packages' methods, and $OCM_BENCH_IMPORTS
        warn(problem)
    try:
        import_modules(args.imports, warn=warn)
    except UserModuleError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2

    if args.list:
        print(list_everything())
        return 0
    try:
        methods = parse_names(args.methods, METHODS, "methods")
        streams = parse_names(args.streams, STREAMS, "streams")
        seeds = parse_seeds(args.seeds)
        settings = args.settings + ([f"fid_features={args.fid_features}"] if args.fid_features else [])
        profiles = [resolve_profile(args.profile, settings + combo) for combo in sweep_combinations(args.sweep)]
        cells = [c for profile in profiles for c in expand_grid(methods, streams, seeds, profile)]
        check_choice(args.device)
        if args.executor == "local" and no_gpu_reason(args.device):   # the workers are this machine
            raise DeviceUnavailableError(no_gpu_reason(args.device))
        if args.workers < 1:
            raise ValueError(f"--workers must be at least 1, not {args.workers}")
        if args.cells_per_gpu is not None and args.cells_per_gpu < 1:
            raise ValueError(f"--cells-per-gpu must be at least 1, not {args.cells_per_gpu}")
        if args.executor == "ray" and args.cells_per_gpu is not None and args.gpus_per_cell is not None:
            raise ValueError("give --cells-per-gpu N (Ray then asks for 1/N GPU per cell) or --gpus-per-cell, "
                             "not both")
        if args.cells_per_gpu is not None and args.device == "cpu":
            warn("--cells-per-gpu has no effect with --device cpu (--workers sets how many cells run at once)")
        if args.executor == "slurm" and args.cells_per_gpu not in (None, 1):
            raise ValueError("--cells-per-gpu packs cells on the local and Ray executors; a Slurm job "
                             "runs one cell (pack with the Ray executor on the allocation instead)")
        fid_samples_feasible(profiles)
        store = ResultStore(args.out)
        check_writable(store.root)
        ready = [c for c in cells if not c.unresolved]
        waiting = [c for c in cells if c.unresolved]
        check_matches_possible(waiting, ready, store.records())
        data_files(streams, args.data_dir)
        progress.store, progress.cells = store, cells
        import torch   # from here on: the data, the FID extractors and the cells

        torch.set_num_threads(1)
        from bench.evaluation.caches import cache_dir, cached_extractor, cached_stream
        from bench.evaluation.device import resolve_device
        from bench.evaluation.features import needs_training
        from bench.evaluation.fid import check_feasible

        for profile in profiles:
            if args.executor == "local" and args.device != "auto":   # the workers are this machine
                resolve_device(args.device, profile.name)
            for stream in streams:  # loads the data now, and forked workers inherit it
                loaded = cached_stream(stream, args.data_dir)
                if profile.fid_features:  # a FID classifier is trained once, here, not in every worker
                    if needs_training(profile.fid_features, loaded, cache_dir(args.data_dir)):
                        print(f"FID features for {stream}: training the '{profile.fid_features}' extractor "
                              "(a small CNN on the stream's training images) once, about 20 s on one core; "
                              f"then cached in {cache_dir(args.data_dir) / 'fid-classifier'}", file=sys.stderr)
                    extractor = cached_extractor(profile.fid_features, stream, args.data_dir)
                    check_feasible(extractor, profile.fid_samples,
                                   [len(loaded.test_images(t, profile.eval_test_per_task))
                                    for t in range(len(loaded.tasks))])
    except (UnknownNameError, ValueError, RuntimeError, DatasetMissingError, CorruptDatasetError,
            DeviceUnavailableError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2

    from bench.execution.claims import live_claims
    from bench.execution.executor import run_cells
    from bench.planning.schedule import longest_first
    from bench.reporting.frames import cells_frame, summary_frame
    from bench.reporting.tables import run_table

    options = {"local": {}, "ray": {"address": args.ray_address, "gpus_per_cell": args.gpus_per_cell},
               "slurm": {"partition": args.slurm_partition, "time_minutes": args.slurm_time,
                         "gpus_per_cell": args.gpus_per_cell, "cluster": args.slurm_cluster}}[args.executor]
    outcomes = {}
    # a bar on a terminal; piped into a file or a pipe its redrawn frames would pack into one line
    show_progress = not args.no_progress and sys.stderr.isatty()

    def run(batch):
        outcomes.update(run_cells(batch, store, args.workers, args.data_dir, progress=show_progress,
                                  executor=args.executor, device=args.device, training_step=args.training_step,
                                  cells_per_gpu=args.cells_per_gpu, **options))

    def run_phase(phase_cells, what):
        store.write_manifest(phase_cells)
        if args.force:
            for cell in phase_cells:
                store.path(cell).unlink(missing_ok=True)
        pending = longest_first([c for c in phase_cells if not store.is_done(c)], store.records())
        print(f"{len(phase_cells)} {what} ({len(phase_cells) - len(pending)} already done), profile "
              f"{', '.join(p.name for p in profiles)}, executor {args.executor}, "
              f"{min(args.workers, max(len(pending), 1))} worker(s), device {args.device} -> {store.root}",
              file=sys.stderr)
        run(pending)
        if not args.no_wait:
            wait_for_other_runners([c for c in pending if outcomes.get(c.key, {}).get("status")
                                    == "running elsewhere"], store, run)

    # Two phases: cells whose budget is matched to another method's memory run once the records
    # they match are there (the reference cells of this grid run in the first phase).
    resolved, unmatched = {}, []
    try:
        run_phase(ready, "cells")
        if waiting:
            records = store.records()
            for cell in waiting:
                try:
                    resolved[id(cell)] = resolve_matches(cell, records)
                except MatchError as err:   # the reference cell of this grid failed
                    unmatched.append((cell, str(err)))
            progress.cells = ready + list(resolved.values())
            run_phase(list(resolved.values()), "matched cells")
    except RuntimeError as err:   # e.g. the executor's optional package is missing
        print(f"error: {err}", file=sys.stderr)
        return 2
    cells = [resolved.get(id(c), c) for c in cells if not c.unresolved or id(c) in resolved]   # grid order

    records = [store.load(c) for c in cells]
    frame = cells_frame([r for r in records if r])
    if len(frame):
        summary = summary_frame(frame)
        print(run_table(frame, wide=args.wide), end="")
        frame.to_csv(store.root / "cells.csv", index=False)
        summary.to_csv(store.root / "summary.csv", index=False)
    held = live_claims(store.root)
    elsewhere = [c for c in cells if not store.is_done(c) and store.path(c).stem in held]
    failed = [(c, getattr(store.load(c), "error", None) or outcomes.get(c.key, {}).get("error")
               or "no record (interrupted?)")
              for c in cells if not store.is_done(c) and c not in elsewhere] + unmatched
    if failed:
        print(f"\n{len(failed)} cell(s) failed:", file=sys.stderr)
        for line in failure_lines(failed, store):
            print(line, file=sys.stderr)
    if elsewhere:
        print(f"\n{len(elsewhere)} cell(s) not done, being run by another runner (--no-wait; see "
              f"python -m bench.status {store.root}):", file=sys.stderr)
        for cell in elsewhere:
            print(f"  {cell.label}: {holder(held[store.path(cell).stem])}", file=sys.stderr)
    return 1 if failed else 3 if elsewhere else 0


if __name__ == "__main__":
    sys.exit(main())
