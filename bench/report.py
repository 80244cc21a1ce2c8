"""`python -m bench.report DIR`: paper tables from a results directory.

Layouts (`--metric`): nll / nll_best_component / fid (the paper's Table 1: rows = methods, columns
= streams, "metric / memory / components"; also kid, precision, recall, density, coverage), forgetting
(NLL forgetting and BWT per stream), clog (the CLoG benchmark's AIQ / AFQ / FR), matrix (the per-task
NLL[t, j] matrix per stream and method), quality (per stream: FID, KID and P/R/D/C side by side),
claims (the OCM paper's claims per stream, tested over seeds); `--paper` sets the paper's Table-1 numbers beside ours; `--sweep KEY` lays
out a sweep over KEY.
`--figures` also draws heatmaps, curves, timelines and the methods' ranks per stream into
DIR/figures/; `--html [OUT]` writes all of it, sample grids included, as one page that opens offline
(default DIR/report.html). Formats: text, markdown, csv, latex (booktabs; compiles standalone with
\\usepackage{booktabs}); with --out FILE and no --format, the format follows FILE's suffix (.txt,
.md, .csv, .tex). Records of different profiles or harness versions are never averaged together:
pick one with --profile, or the report refuses. What the numbers are: docs/metrics.md. Exit 2 on
bad input (a missing directory, no records, an --out that is a folder), with one line saying what
to do.
"""
from __future__ import annotations

import argparse
import sys
from contextlib import nullcontext
from pathlib import Path

from bench.metrics import primary_metric, report_layouts
from bench.reporting import REPORT_FORMATS as FORMATS
from bench.reporting import SUFFIXES
from streams.files import write_atomic

LAYOUTS = tuple(report_layouts())   # the metric registry's (pure Python: a fast --help)
# --out's suffix -> the format written when --format is not given
SUFFIX_FORMATS = {suffix: fmt for fmt in FORMATS for suffix in SUFFIXES[fmt]}   # --out's suffix -> its format


def draw(records: list[dict], folder: Path, profile: str | None, sweep: str | None, layout: str) -> None:
    """The figures of `--figures`, each path said on stderr."""
    from bench.reporting.figures import draw_figures, draw_ranks, draw_seed_spread, draw_sweep, draw_timelines
    from bench.reporting.frames import COLUMNS, select_cells
    from bench.reporting.sweep import sweep_frame
    from bench.reporting.tables import sweep_metric

    if sweep:
        paths = draw_sweep(sweep_frame(records, sweep), sweep, folder, sweep_metric(layout).column)
    else:
        cells = select_cells(records, profile)
        chosen = [r for r in records if r.profile_name in set(cells["profile_name"])]
        metric = COLUMNS.get(layout, COLUMNS[primary_metric().name])   # forgetting/matrix layouts: the primary's ranks
        paths = (draw_figures(cells, folder) + draw_timelines(chosen, folder) + draw_ranks(cells, folder, metric)
                 + draw_seed_spread(cells, folder, metric))
    for path in paths:
        print(f"wrote {path}", file=sys.stderr)


def baseline_note(from_baseline: dict, profile: str | None, fmt: str) -> str:
    """Which rows come from which baseline, with its harness versions and its commit."""
    import subprocess

    lines = []
    for folder, records in from_baseline.items():
        rows = sorted({r.label for r in records if r.done and (profile is None or r.profile_name == profile)})
        if not rows:
            continue
        versions = ", ".join(sorted({str(r.numbers_version or r.harness_version) for r in records}))
        commit = subprocess.run(["git", "log", "-1", "--format=%h", "--", "."], cwd=folder, capture_output=True,
                                text=True, check=False).stdout.strip()
        lines.append(f"Rows from the baseline {folder} (harness {versions}"
                     + (f", commit {commit}" if commit else "") + f"): {', '.join(rows)}.")
    if not lines or fmt == "csv":
        return ""
    import textwrap

    return "\n" + "\n".join(textwrap.fill(line, 120) if fmt == "text" else line for line in lines) + "\n"


def layout_text(records: list, args, fmt: str) -> str:
    """The tables that --versus, --sweep or --metric ask for."""
    from bench.reporting.tables import build_report, sweep_report

    if args.versus:
        from bench.reporting.claims import versus_tables
        from bench.reporting.frames import select_cells

        return versus_tables(select_cells(records, args.profile), args.versus, fmt)
    if args.sweep:
        return sweep_report(records, args.sweep, args.metric, fmt)
    return build_report(records, args.metric, fmt, args.profile, args.paper)


def write_html(results: str, records: list[dict], out: str, profile: str | None) -> int:
    """`--html`: the page (bench/reporting/html.py), its path, size and build time said."""
    from bench.reporting.frames import ReportError
    from bench.reporting.html import regenerate_command, write_page

    if profile is not None:
        records = [r for r in records if r.profile_name == profile]
    try:
        size, seconds = write_page(results, records, out, regenerate_command(results, out, profile))
    except ReportError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except OSError as err:   # a read-only folder, a full disk: the page that was there is untouched
        print(f"error: cannot write {out}: {err.strerror or err}", file=sys.stderr)
        return 2
    print(f"wrote {out} ({size / 1e6:.2f} MB, {seconds:.1f} s)")
    return 0


class BadInput(ValueError):
    """An argument that cannot work; the message says what to do instead."""


def output_format(fmt: str | None, out: str | None) -> str:
    """--format, or the format --out's suffix names; a suffix that contradicts --format, or that
    names no format when --format is not given, is refused."""
    suffix = Path(out).suffix.lower() if out else ""
    implied = SUFFIX_FORMATS.get(suffix)
    if fmt is not None:
        if implied is not None and implied != fmt:
            raise BadInput(f"--out {out} is a {suffix} file but --format is {fmt}: give --format {implied}, "
                           f"or an --out ending in {suffix_of(fmt)}")
        return fmt
    if out and suffix and implied is None:
        raise BadInput(f"cannot tell the format from --out {out}'s suffix '{suffix}': give --format "
                       f"{'|'.join(FORMATS)} (or end the name in {', '.join(SUFFIX_FORMATS)})")
    return implied or "text"


def suffix_of(fmt: str) -> str:
    return next(s for s, f in SUFFIX_FORMATS.items() if f == fmt)


def check_out(out: str | None) -> None:
    """Refuse an --out that is a folder, or whose folder cannot be created."""
    if out is None:
        return
    path = Path(out)
    if path.is_dir():
        raise BadInput(f"--out {out} is a directory: give a file name, e.g. {path / 'table.txt'}")
    parent = next((p for p in path.parents if p.exists()), None)
    if parent is not None and not parent.is_dir():
        raise BadInput(f"--out {out}: {parent} is a file, not a directory")


def check_results(folder: str) -> None:
    """Refuse a results directory that does not exist or holds no records."""
    path = Path(folder)
    if not path.exists():
        raise BadInput(f"no results directory '{folder}' (give the --out of a bench.run, e.g. results)")
    if not path.is_dir():
        raise BadInput(f"'{folder}' is a file, not a results directory (give the --out of a bench.run)")
    if not (path / "records").is_dir():
        if (path / "grid.json").exists():
            raise BadInput(f"no records in '{folder}' yet: no cell of its grid has finished "
                           f"(python -m bench.status {folder} shows them)")
        raise BadInput(f"'{folder}' holds no records/ folder: it is not a results directory of bench.run "
                       "(give its --out)")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.report", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("results", help="results directory (as written by bench.run --out)")
    p.add_argument("--format", choices=FORMATS, default=None,
                   help="text | markdown | csv | latex (default: from --out's suffix, else text)")
    p.add_argument("--metric", default=primary_metric().name, metavar="LAYOUT",
                   help=f"the layout: {' | '.join(LAYOUTS)} (or a metric a --import registers; default: %(default)s)")
    p.add_argument("--import", dest="imports", action="append", default=[], metavar="MODULE",
                   help="a module registering the metrics, methods or streams of these records (as bench.run's)")
    p.add_argument("--versus", default=None, metavar="METHOD",
                   help="METHOD (a row's label) against every other row, one table per stream: d, its spread, "
                        "the paired p over seeds, Holm's mark and a verdict")
    p.add_argument("--baseline", dest="baselines", action="append", default=[], metavar="DIR",
                   help="a finished study reported beside these records (read-only; e.g. reports/table1): "
                        "its rows join the tables, and a line says which came from it; repeatable")
    p.add_argument("--profile", default=None, help="only records of this profile")
    p.add_argument("--equivalence", type=float, default=None, metavar="NATS",
                   help="the smallest difference of interest for the claims and --versus tables: a 'cannot "
                        "tell' whose 90%% interval lies within +-NATS is called equivalent (default 1; "
                        "docs/metrics.md)")
    p.add_argument("--wide", action="store_true",
                   help="text: each table in one piece however wide (by default a table wider than "
                        "120 columns prints in column groups, each led by the row label)")
    p.add_argument("--paper", action="store_true",
                   help="nll layouts: the OCM paper's Table-1 number beside each stream's column")
    p.add_argument("--out", default=None,
                   help="write to this file instead of stdout (its suffix sets the format: "
                        + ", ".join(f"{s} {f}" for s, f in SUFFIX_FORMATS.items()) + ")")
    p.add_argument("--figures", action="store_true",
                   help="also draw NLL heatmaps, NLL/FID curves and memory/component timelines per "
                        "stream, and the methods' ranks per stream by --metric (with 2+ streams; with "
                        "--sweep: the metric against the swept setting) into DIR/figures/")
    p.add_argument("--sweep", default=None, metavar="KEY",
                   help="lay out the records of a sweep over KEY (bench.run --sweep KEY=...): rows = "
                        "methods (and other settings that vary), columns = KEY's values")
    p.add_argument("--html", nargs="?", const="", default=None, metavar="OUT",
                   help="write one self-contained HTML page of the directory instead (every profile's "
                        "tables, figures, sample grids beside real test images, provenance; opens offline) "
                        "to OUT (default DIR/report.html) and print its path; --profile restricts it")
    return p


def main(argv: list[str] | None = None) -> int:
    try:
        return report(build_parser().parse_args(argv))
    except KeyboardInterrupt:   # every file is written atomically: what was there is still whole
        print("interrupted (Ctrl-C): nothing half-written; files already there are as they were", file=sys.stderr)
        return 130


def report(args) -> int:
    """The command, once its arguments are parsed."""
    from methods.core.user_methods import UserModuleError, import_modules

    try:
        import_modules(args.imports)   # before the reports read the registries
    except UserModuleError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.equivalence is not None and not (args.equivalence > 0 and args.equivalence < float("inf")):
        print(f"error: --equivalence {args.equivalence}: give a positive number of nats (e.g. 1)", file=sys.stderr)
        return 2
    if args.metric not in report_layouts():
        print(f"error: unknown layout '{args.metric}'; valid: {', '.join(report_layouts())}", file=sys.stderr)
        return 2
    try:
        fmt = output_format(args.format, args.out)
        check_out(args.out)
        check_results(args.results)
    except BadInput as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    from bench.execution.store import ResultStore
    from bench.reporting.frames import ReportError
    records = ResultStore(args.results).records()
    own = {r.key for r in records}
    from_baseline: dict[str, list] = {}
    for folder in args.baselines:   # read-only: their rows join the tables, said below them
        if not (Path(folder) / "records").is_dir():
            print(f"error: --baseline {folder}: no records/ folder (give a results directory of bench.run)",
                  file=sys.stderr)
            return 2
        extra = [r for r in ResultStore(folder, read_only=True).records() if r.key not in own]
        records += extra
        own |= {r.key for r in extra}
        from_baseline[folder] = extra
    if not any(r.done for r in records):
        print(f"error: no finished records in '{args.results}' (python -m bench.status {args.results} "
              "lists its cells and why they failed)", file=sys.stderr)
        return 2
    if args.html is not None:
        return write_html(args.results, records, args.html or str(Path(args.results) / "report.html"),
                          args.profile)
    from bench.reporting.render import one_piece_tables

    try:
        from bench.reporting.intervals import equivalence_bound

        with one_piece_tables() if args.wide else nullcontext(), \
                equivalence_bound(args.equivalence) if args.equivalence is not None else nullcontext():
            text = layout_text(records, args, fmt)
        if args.figures:
            draw(records, Path(args.results) / "figures", args.profile, args.sweep, args.metric)
    except ReportError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except OSError as err:   # the figures' folder cannot be written
        print(f"error: cannot write the figures into {Path(args.results) / 'figures'}: {err.strerror or err}",
              file=sys.stderr)
        return 2
    text += baseline_note(from_baseline, args.profile, fmt)
    if args.out:
        try:
            write_atomic(args.out, text)
        except OSError as err:
            print(f"error: cannot write --out {args.out}: {err.strerror or err}", file=sys.stderr)
            return 2
        print(f"wrote {args.out} ({fmt})", file=sys.stderr)
    else:
        print(text, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
