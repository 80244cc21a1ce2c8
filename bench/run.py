"""`python -m bench.run`: run a methods x streams x seeds grid and print its NLL table.

Finished cells are never run twice (their records are content-keyed); `--force` reruns them.
Cells run on the local process pool, on Ray or on Slurm; runners sharing a results directory
never run one cell at the same time (atomic claims). `python -m bench.status DIR` shows progress.
Exit codes: 0 all cells done; 1 some cells failed (listed, each with the file holding its
traceback); 2 bad input (refused before any cell runs, with one line saying what to do); 3 cells
left to a live runner elsewhere (--no-wait; listed); 130 interrupted (Ctrl-C: the finished cells
are kept, rerun the same command to resume); 143 terminated (SIGTERM, handled as Ctrl-C). Never 0 while a cell of the grid has no finished
record.

The command reads top to bottom (`run`): load the user's modules, plan the grid
(bench/planning/plan.py), check everything that can be checked before a cell runs and warm up
(bench/evaluation/prepare.py), run it (bench/execution/runner.py), summarise it
(bench/reporting/tables.py), and exit with what happened. Every option list is its owner's.
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

from bench.evaluation.device import DEVICE_CHOICES
from bench.execution import EXECUTORS, Terminated
from bench.metrics import EXTRACTORS
from bench.planning.code_digest import code_digest
from bench.planning.defaults import DEFAULT_GRID as DEFAULTS
from bench.planning.profiles import PROFILES
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
    p.add_argument("--profile", default=None,
                   help=f"{' | '.join(PROFILES)} (default: {DEFAULTS['profile']}, or the --baseline's own "
                        "profile); see bench/planning/profiles.py")
    p.add_argument("--set", dest="settings", action="append", default=[], metavar="KEY=VALUE",
                   help="override a profile setting (e.g. epochs=2) or a method setting "
                        "(e.g. reservoir.budget=500); repeatable")
    p.add_argument("--sweep", action="append", default=[], metavar="KEY=V1,V2,...",
                   help="run the grid at every value of a setting (profile or METHOD.OPTION); "
                        "repeatable: every combination runs, each under its own profile label "
                        "(e.g. --sweep epochs=1,3,10 --sweep lr=0.001,0.0001)")
    p.add_argument("--fid-features", default=None, metavar="EXTRACTOR",
                   help=f"FID feature extractor: {' | '.join(EXTRACTORS)} (or one a --import registers); "
                        "'none' skips FID (default: the profile's; quick: classifier). Same as --set "
                        "fid_features=...")
    p.add_argument("--out", default=DEFAULTS["out"], help="results directory (default: %(default)s)")
    p.add_argument("--baseline", dest="baselines", action="append", default=[], metavar="DIR",
                   help="a finished study read beside the run, never written (e.g. reports/table1): its "
                        "cells are not run again, budgets matched to its methods resolve from it, and "
                        "without --profile its single profile (settings included) is the run's; repeatable")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                   help="parallel worker processes, one torch thread each (default: cores = %(default)s)")
    p.add_argument("--executor", default="local", metavar="NAME",
                   help="where cells run: " + "; ".join(f"{e.name}: {e.description}" for e in EXECUTORS.values())
                        + " (or one a --import registers); any of them can share a results dir (default: local)")
    p.add_argument("--executor-option", dest="executor_options", action="append", default=[],
                   metavar="KEY=VALUE", help="a setting of the executor (its options dataclass); repeatable")
    p.add_argument("--device", default="auto",
                   help=f"{' | '.join(DEVICE_CHOICES)} | cuda:N (default: auto = the GPU for the paper profile "
                        "when there is one, else the CPU); resolved in each worker, and recorded")
    p.add_argument("--training-step", dest="training_step", default="auto", choices=TRAINING_STEPS,
                   help="how a training step runs (default: auto = a captured CUDA graph on a GPU, the "
                        "fused step elsewhere, eager for methods with per-step callbacks); recorded")
    p.add_argument("--cells-per-gpu", dest="cells_per_gpu", type=int, default=None,
                   help="GPU cells run at once on each GPU, each started on its own cuda:i (local and "
                        "Ray executors; default: the --workers spread over the visible GPUs). At most "
                        "--workers cells run at once in all: give --workers N x GPUs or more")
    executor_flags(p)
    p.add_argument("--data-dir", default=None,
                   help="where dataset files are (default: $BENCH_DATA_DIR or ./data)")
    p.add_argument("--force", action="store_true", help="rerun cells that already have a record")
    p.add_argument("--checkpoint-minutes", type=checkpoint_minutes, default=5.0, metavar="MINUTES",
                   help="a running cell writes its whole state to DIR/checkpoints/ after every task and, for "
                        "task-free methods, every MINUTES at an incoming-batch boundary (default 5; 0: task "
                        "boundaries only; none: never); a killed or preempted cell resumes there, its record "
                        "identical to an uninterrupted run's. SIGTERM checkpoints, then exits 75 per cell")
    p.add_argument("--keep-checkpoints", action="store_true",
                   help="keep each cell's last checkpoint after its record is written (default: removed)")
    p.add_argument("--keep-models", action="store_true",
                   help="save each cell's final model to DIR/models/ (weights and settings; `ocm-bench sample "
                        "RECORD` draws from it, bench.models.load_model(RECORD) loads it)")
    p.add_argument("--no-wait", action="store_true",
                   help="do not wait for cells that a live runner elsewhere is running: exit 3 and "
                        "list them (default: wait, showing which runner holds them)")
    p.add_argument("--import", dest="imports", action="append", default=[], metavar="MODULE",
                   help="import a module that registers methods (`from methods import GenerativePlugin, "
                        "register_method`) or streams (`from streams import register_stream`): a dotted "
                        "module name or a path to a .py file, e.g. examples/my_method.py; repeatable. "
                        "Worker processes import it too ($OCM_BENCH_IMPORTS). Installed packages register "
                        "through the 'ocm_bench.methods' and 'ocm_bench.streams' entry point groups instead")
    p.add_argument("--list", action="store_true", help="list methods, streams and profiles, then exit")
    p.add_argument("--no-progress", action="store_true",
                   help="no progress bar (there is none anyway when stderr is not a terminal)")
    p.add_argument("--wide", action="store_true",
                   help="print the run's table with every column (SE, KID, P/R/D/C, BWT, images trained, "
                        "seeds, seconds); by default it fits 120 columns, and results/summary.csv has all")
    return p


def executor_flags(p: argparse.ArgumentParser) -> None:
    """The flags the registered executors declare (`Executor.flags`: --ray-address, --slurm-time,
    ...), each setting one of its settings; a flag two executors share (--gpus-per-cell) sets both."""
    seen = {}
    for executor in EXECUTORS.values():
        for setting, (flag, help_text) in executor.flags.items():
            seen.setdefault(flag, (setting, help_text))
    for flag, (setting, help_text) in seen.items():
        p.add_argument(flag, dest=f"executor_flag:{setting}", default=None, metavar="VALUE", help=help_text)


def executor_settings(args) -> dict[str, str]:
    """{setting: text} of the executor's settings given by its flags and by --executor-option (text
    parsed by the executor's options dataclass); a flag of another executor is refused."""
    from bench.execution import get_executor
    from bench.planning.validate import field_bounds, field_types, parse_setting

    spec = get_executor(args.executor)
    given = {k.partition(":")[2]: v for k, v in vars(args).items() if k.startswith("executor_flag:") and v is not None}
    for item in args.executor_options:
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"--executor-option '{item}' is not of the form KEY=VALUE")
        if key in given:
            raise ValueError(f"executor setting '{key}' is given twice: give it once")
        given[key] = value
    types, bounds = field_types(spec.options), field_bounds(spec.options)
    unknown = sorted(set(given) - set(types))
    if unknown:
        flags = [flag for e in EXECUTORS.values() for s, (flag, _) in e.flags.items() if s in unknown]
        raise ValueError(f"{', '.join(flags or unknown)} is not a setting of the {spec.name} executor "
                         f"(its settings: {', '.join(types) or 'none'})")
    return {k: parse_setting(f"{spec.name}.{k}", v, types[k], bounds[k]) for k, v in given.items()}


def warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


def fail(message) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


def _terminate(signum, frame):
    raise Terminated()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    state = {}   # the runner, once there is one: what an interrupted run got to
    try:
        previous = signal.signal(signal.SIGTERM, _terminate)
    except ValueError:   # not the main thread (a test calling main from one): no handler of ours
        previous = None
    try:
        return run(args, state)
    except KeyboardInterrupt as stop:
        runner, what = state.get("runner"), "terminated (SIGTERM)" if isinstance(stop, Terminated) else "interrupted (Ctrl-C)"
        print(runner.interrupted_line(what) if runner else f"{what} before any cell ran", file=sys.stderr)
        return 143 if isinstance(stop, Terminated) else 130
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def run(args, state: dict) -> int:
    """The command, top to bottom."""
    # Everything up to the first cell is checked without torch (seconds, not ten): names, settings,
    # devices, the results directory, dataset files; torch comes in with the data and the cells.
    from bench.evaluation import prepare
    from bench.evaluation.device import DeviceUnavailableError
    from bench.execution.runner import GridRunner
    from bench.execution.store import ResultStore
    from bench.planning.plan import check_matches_possible, listing, plan_grid
    from methods.core.user_methods import UserModuleError, import_modules, load_all
    from streams import UnknownNameError
    from streams.datasets import DatasetMissingError
    from streams.idx import CorruptDatasetError

    # 1. the user's methods and streams: installed packages', $OCM_BENCH_IMPORTS', --import's
    for problem in load_all():
        warn(problem)
    try:
        import_modules(args.imports, warn=warn)
    except UserModuleError as err:
        return fail(err)
    if args.list:
        print(listing())
        return 0

    try:
        options = run_options(args)
        baseline, profile, baseline_settings = read_baselines(args.baselines, args.profile)
        # 2. the plan: cells in grid order, those that wait for another's record
        given = {s.partition("=")[0].strip() for s in args.settings} | ({"fid_features"} if args.fid_features else set())
        settings = [s for s in baseline_settings if s.partition("=")[0] not in given]   # the user's own win
        settings += args.settings + ([f"fid_features={args.fid_features}"] if args.fid_features else [])
        plan = plan_grid(args.methods, args.streams, args.seeds, profile, settings, args.sweep)
        # 3. preflight: what would stop a cell, refused before any runs; then the warm-up (torch)
        options.check(warn)
        if not str(args.out).strip():
            raise ValueError("--out needs a results directory (e.g. --out results)")
        store = ResultStore(args.out)
        check_writable(store.root)
        migrate_store(store)
        check_matches_possible(plan, store.records() + list(baseline.values()))
        prepare.check(plan, options.device, options.local, args.data_dir)
        state["runner"] = runner = GridRunner(plan, store, options, baseline)
        prepare.warm_up(plan, options.device, options.local, args.data_dir)
        line = prepare.estimate_line([c for c in plan.cells if options.force or not runner.is_done(c)],
                                     args.data_dir, options.workers)
        if line:
            print(line, file=sys.stderr)
    except (UnknownNameError, ValueError, RuntimeError, DatasetMissingError, CorruptDatasetError,
            DeviceUnavailableError) as err:
        return fail(err)

    # 4. the run: both phases, on the chosen executor
    try:
        outcome = runner.run()
    except RuntimeError as err:   # e.g. the executor's optional package is missing
        return fail(err)

    # 5. the summary: the run's table, cells.csv and summary.csv
    from bench.reporting.tables import run_summary

    print(run_summary([r for c in outcome.cells if (r := runner.load(c))], store.root, args.wide), end="")

    # 6. the exit code, with what did not finish
    return exit_code(outcome, store)


def run_options(args):
    """The execution options of the command (bench/execution/runner.py's RunOptions)."""
    from bench.execution import Keeping
    from bench.execution.runner import RunOptions

    keeping = Keeping(checkpoint_minutes=args.checkpoint_minutes, keep_checkpoints=args.keep_checkpoints,
                      keep_models=args.keep_models, code_digest=code_digest())
    # a bar on a terminal; piped into a file or a pipe its redrawn frames would pack into one line
    return RunOptions(executor=args.executor, workers=args.workers, device=args.device,
                      training_step=args.training_step, cells_per_gpu=args.cells_per_gpu,
                      data_dir=args.data_dir, executor_settings=executor_settings(args), force=args.force,
                      wait=not args.no_wait, progress=not args.no_progress and sys.stderr.isatty(),
                      keeping=keeping)


def checkpoint_minutes(text: str) -> float | None:
    """--checkpoint-minutes: a number of minutes >= 0 (0: task boundaries only), or 'none'."""
    if text.strip().lower() == "none":
        return None
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number of minutes or 'none'") from None
    if not (value >= 0 and value < float("inf")):
        raise argparse.ArgumentTypeError(f"{text}: give minutes >= 0 (0: at task boundaries only) or 'none'")
    return value


def read_baselines(folders: list[str], profile: str | None) -> tuple[dict, str, list[str]]:
    """({key: finished record} of the baseline studies (read-only), the profile to run, the settings
    its label carries): without --profile, the baselines' single profile label is taken apart into
    its base and settings, so that the run's cells have the baseline's keys."""
    from bench.execution.store import ResultStore
    from bench.planning.profiles import split_label
    from bench.planning.validate import SettingError

    records = {}
    for folder in folders:
        if not (Path(folder) / "records").is_dir():
            raise ValueError(f"--baseline {folder}: no records/ folder (give a results directory of bench.run, "
                             "e.g. reports/table1)")
        records.update({r.key: r for r in ResultStore(folder, read_only=True).records() if r.done and r.key})
    if profile is not None or not records:
        return records, profile or DEFAULTS["profile"], []
    labels = sorted({r.profile_name for r in records.values() if r.profile_name})
    if len(labels) != 1:
        raise SettingError(f"the baselines hold several profiles ({', '.join(labels)}): choose one with --profile "
                           "(and its settings with --set)")
    base, settings = split_label(labels[0])
    return records, base, [f"{k}={v}" for k, v in settings.items()]


def migrate_store(store) -> None:
    """Records of an earlier key definition get their current keys first (bench/migrate.py), so
    that no finished cell runs again for a change of key alone."""
    from bench.migrate import migrate_folder

    if store.records_dir.is_dir():
        outcome = migrate_folder(store.records_dir)
        if outcome.renamed or outcome.skipped:
            print(f"{store.root}: {outcome.summary()} (bench.migrate)", file=sys.stderr)


def check_writable(folder: Path) -> None:
    """Refuse, before anything runs, a results directory that cannot be created or written."""
    import tempfile

    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-test-"):
            pass
    except OSError as err:
        raise ValueError(f"cannot write results to '{folder}': {err.strerror or err}") from None


def exit_code(outcome, store) -> int:
    """1 if a cell failed, 3 if cells were left to a runner elsewhere, else 0; each listed."""
    from bench.execution.runner import failure_lines

    if outcome.failed:
        print(f"\n{len(outcome.failed)} cell(s) failed:", file=sys.stderr)
        for line in failure_lines(outcome.failed, store):
            print(line, file=sys.stderr)
    if outcome.elsewhere:
        print(f"\n{len(outcome.elsewhere)} cell(s) not done, being run by another runner (--no-wait; see "
              f"python -m bench.status {store.root}):", file=sys.stderr)
        for cell, holder in outcome.elsewhere:
            print(f"  {cell.label}: {holder}", file=sys.stderr)
    return 1 if outcome.failed else 3 if outcome.elsewhere else 0


if __name__ == "__main__":
    sys.exit(main())
