"""`python -m bench.report DIR`: paper tables from a results directory.

Layouts (`--metric`): nll / nll_best_component / fid (the paper's Table 1: rows = methods, columns
= streams, "metric / memory / components"), forgetting (NLL forgetting and BWT per stream), matrix
(the per-task NLL[t, j] matrix per stream and method), claims (the OCM paper's claims per stream,
tested over seeds); `--paper` sets the paper's Table-1 numbers beside ours; `--sweep KEY` lays
out a sweep over KEY.
`--figures` also draws heatmaps, curves, timelines and the methods' ranks per stream into
DIR/figures/; `--html [OUT]` writes all of it, sample grids included, as one page that opens offline
(default DIR/report.html). Formats: text, markdown, csv, latex (booktabs; compiles standalone with
\\usepackage{booktabs}). Records of different profiles or harness versions are never averaged
together: pick one with --profile, or the report refuses. What the numbers are: docs/metrics.md.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bench.execution.store import ResultStore
from bench.reporting.frames import ReportError, select_cells
from bench.reporting.tables import LAYOUTS, build_report, sweep_metric, sweep_report


def draw(records: list[dict], folder: Path, profile: str | None, sweep: str | None, layout: str) -> None:
    """The figures of `--figures`, each path said on stderr."""
    from bench.reporting.figures import draw_figures, draw_ranks, draw_sweep, draw_timelines
    from bench.reporting.frames import METRICS
    from bench.reporting.sweep import sweep_frame

    if sweep:
        paths = draw_sweep(sweep_frame(records, sweep), sweep, folder, sweep_metric(layout).column)
    else:
        cells = select_cells(records, profile)
        chosen = [r for r in records if r.get("profile_name") in set(cells["profile_name"])]
        metric = METRICS.get(layout, METRICS["nll"])   # forgetting/matrix layouts: ranks by NLL
        paths = draw_figures(cells, folder) + draw_timelines(chosen, folder) + draw_ranks(cells, folder, metric)
    for path in paths:
        print(f"wrote {path}", file=sys.stderr)


def write_html(results: str, records: list[dict], out: str, profile: str | None) -> int:
    """`--html`: the page (bench/reporting/html.py), its path, size and build time said."""
    from bench.reporting.html import regenerate_command, write_page

    if profile is not None:
        records = [r for r in records if r.get("profile_name") == profile]
    try:
        size, seconds = write_page(results, records, out, regenerate_command(results, out, profile))
    except ReportError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"wrote {out} ({size / 1e6:.2f} MB, {seconds:.1f} s)")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.report", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("results", help="results directory (as written by bench.run --out)")
    p.add_argument("--format", choices=["text", "markdown", "csv", "latex"], default="text")
    p.add_argument("--metric", choices=LAYOUTS, default="nll")
    p.add_argument("--profile", default=None, help="only records of this profile")
    p.add_argument("--paper", action="store_true",
                   help="nll layouts: the OCM paper's Table-1 number beside each stream's column")
    p.add_argument("--out", default=None, help="write to this file instead of stdout")
    p.add_argument("--figures", action="store_true",
                   help="also draw NLL heatmaps, NLL/FID curves and memory/component timelines per "
                        "stream, and the methods' ranks per stream by --metric (with --sweep: the "
                        "metric against the swept setting) into DIR/figures/")
    p.add_argument("--sweep", default=None, metavar="KEY",
                   help="lay out the records of a sweep over KEY (bench.run --sweep KEY=...): rows = "
                        "methods (and other settings that vary), columns = KEY's values")
    p.add_argument("--html", nargs="?", const="", default=None, metavar="OUT",
                   help="write one self-contained HTML page of the directory instead (every profile's "
                        "tables, figures, sample grids beside real test images, provenance; opens offline) "
                        "to OUT (default DIR/report.html) and print its path; --profile restricts it")
    args = p.parse_args(argv)
    records = ResultStore(args.results).records()
    if args.html is not None:
        return write_html(args.results, records, args.html or str(Path(args.results) / "report.html"),
                          args.profile)
    try:
        if args.sweep:
            text = sweep_report(records, args.sweep, args.metric, args.format)
        else:
            text = build_report(records, args.metric, args.format, args.profile, args.paper)
        if args.figures:
            draw(records, Path(args.results) / "figures", args.profile, args.sweep, args.metric)
    except ReportError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text)
    else:
        print(text, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
