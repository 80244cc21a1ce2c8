"""One page a person can read: a results directory as one self-contained HTML file
(`python -m bench.report DIR --html [OUT]`).

The page works offline, opened from disk: inline CSS, every image embedded as a data: URI, no
script, and a Content-Security-Policy that lets the browser load nothing else. Nothing here formats
a number of the harness: the tables are bench.report's own (tables.py, through the one renderer's
HTML format, captions from captions.py), the figures figures.py's (drawn into a temporary folder
and embedded), the sample grids the PNGs the cells wrote.

Per profile (and harness version) of the records: the run's table; the Table-1 layout of every
metric the records have, forgetting, the per-task matrices; the figures (NLL[t, j] heatmaps, the
curves over task segments, timelines, ranks); per stream a grid of samples per method after the
last task (one seed) beside real test images; failed cells; the provenance. Then the sweeps the
profile labels form. What a directory lacks (FID, a second seed, sample grids) is said where it
would be.
"""
from __future__ import annotations

import base64
import html
import io
import json
import shlex
import tempfile
import time
from collections import Counter
from pathlib import Path

import pandas as pd

from bench.metrics import LAYOUTS as SUMMARY_LAYOUTS
from bench.metrics import METRICS as REGISTERED
from bench.metrics import (
    headline_metrics,
    metric_layouts,
    primary_metric,
    provenance_layouts,
    provenance_metrics,
    provenances,
)
from bench.record import Record, as_records
from bench.reporting.frames import COLUMNS, ReportError, select_cells, summary_frame
from bench.reporting.paper import paper_entry
from bench.reporting.tables import PAPER_METRICS, build_report, run_table, sweep_report
from streams.files import write_atomic

GRID_IMAGES = 64   # real test images shown beside the samples, drawn as bench/evaluation/images.py
GRID_STYLE = {"nrow": 8, "padding": 1, "pad_value": 0.5}   # draws its grids (same torchvision call)
METRIC_NAMES = {name: metric.summary_label for name, metric in REGISTERED.items()}   # 'NLL', 'FID', ...
FIGURE_CAPTIONS = {   # file name ending -> what the figure shows (figures.py's figures, from the registry)
    **{f"-{m.name}-matrix.png": f"{m.summary_label}[t, j] per method (mean over seeds): row t = after task t, "
                                f"column j = test task j; one colour scale for all methods"
                                + (f" ({m.unit})" if m.unit else "")
       for m in REGISTERED.values() if m.heatmap},
    **{f"-{m.name}-curve.png": f"average {m.summary_label} over the tasks seen so far, mean_{{j<=t}} "
                               f"{m.summary_label}[t, j], after each task segment (mean over seeds)"
                               + (": forgetting shows as a rise" if m.lower_is_better else "")
       for m in REGISTERED.values() if m.headline},
}

CSS = """
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
       color: #1d1d1f; background: #fff; margin: 0; }
main { max-width: 1800px; margin: 0 auto; padding: 1.2rem 2rem 4rem; }
h1 { font-size: 1.6rem; margin: .4rem 0 .2rem; }
h2 { font-size: 1.3rem; margin: 2.4rem 0 .4rem; padding-top: .8rem; border-top: 3px solid #2c5d8f; }
h3 { font-size: 1.08rem; margin: 1.6rem 0 .4rem; color: #2c5d8f; }
h4 { font-size: .98rem; margin: 1.1rem 0 .3rem; }
p, li { max-width: 75rem; }
code, pre { font: 13px/1.4 ui-monospace, "DejaVu Sans Mono", monospace; background: #f3f4f6;
            border-radius: 3px; }
code { padding: 0 .25em; }
pre { padding: .5rem .7rem; white-space: pre-wrap; word-break: break-all; }
nav { background: #f6f8fa; border: 1px solid #d8dee4; border-radius: 6px; padding: .4rem 1rem; }
nav ul { margin: .2rem 0; padding-left: 1.2rem; }
figure { margin: .6rem 0 1.2rem; }
figure.table { overflow-x: auto; }
table { border-collapse: collapse; font-size: 13.5px; font-variant-numeric: tabular-nums; }
th, td { border: 1px solid #d0d7de; padding: .22rem .55rem; text-align: center; }
th { background: #eef2f6; }
td:first-child, th:first-child { text-align: left; }
tbody tr:nth-child(even) { background: #f8fafc; }
td strong { color: #0b5d1e; }
figcaption { font-size: 12.5px; color: #555; max-width: 75rem; margin-top: .3rem; }
.note { background: #fff8e1; border-left: 4px solid #e0a800; padding: .35rem .8rem; max-width: 75rem;
        font-size: 14px; }
.error { background: #fdecea; border-left: 4px solid #c62828; }
.layouts, .figures { display: flex; flex-wrap: wrap; gap: .4rem 2.2rem; align-items: flex-start; }
.layouts > .layout { flex: 1 1 auto; max-width: 100%; min-width: min(560px, 100%); }
.layouts figcaption { contain: inline-size; }   /* a caption as wide as its table, not wider */
[data-layout=run] td:nth-child(-n+2), [id^=sweep-] td:nth-child(-n+2) { text-align: left; }
[data-layout=run] th { white-space: normal; }
[data-layout=run] td, [data-layout=run] th { padding: .22rem .4rem; }
[data-layout=run] td:nth-child(2) { min-width: 11em; }
h5 { font-size: .92rem; margin: .9rem 0 .2rem; }
[id*="-glance-"] td:nth-child(3) { text-align: left; }
p.protocol { font-size: 13.5px; }
.figures figure { flex: 1 1 520px; max-width: fit-content; }
.figures figure.wide { flex-basis: 100%; }
.figures img { max-width: 100%; height: auto; border: 1px solid #e5e7eb; box-sizing: border-box; }
figure.extras td { text-align: left; }
.figures figcaption { contain: inline-size; }
.grids { display: flex; flex-wrap: wrap; gap: 14px; }
.grids figure { margin: 0; width: 235px; }
.grids figcaption { font-size: 12.5px; }
.grids img { width: 233px; image-rendering: pixelated; border: 1px solid #ccc; }
.grids figure.real figcaption { font-weight: 600; color: #2c5d8f; }
details { margin: .6rem 0; }
summary { cursor: pointer; color: #2c5d8f; font-weight: 600; }
dl.provenance { display: grid; grid-template-columns: max-content 1fr; gap: .15rem 1rem; font-size: 13.5px; }
dl.provenance dt { font-weight: 600; }
dl.provenance dd { margin: 0; word-break: break-word; }
"""
POLICY = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"


def esc(text) -> str:
    return html.escape(str(text))


def note(text: str, kind: str = "note") -> str:
    """What a directory lacks, said where it would be."""
    return f'<p class="{kind}">{esc(text)}</p>\n'


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def image(png: bytes, alt: str) -> str:
    return f'<img src="{data_uri(png)}" alt="{esc(alt)}">'


def slug(text: str) -> str:
    """'At a glance: which method' -> 'at-a-glance-which-method' (an id, a file name)."""
    import re

    return re.sub("-+", "-", "".join(c if c.isalnum() else "-" for c in text)).strip("-").lower()


def label_order(label: str):
    """Profile labels sorted by their settings' values, numbers as numbers (epochs=3 before 10)."""
    from bench.planning.profiles import split_label
    from bench.reporting.sweep import sweep_value

    base, settings = split_label(label)
    return base, tuple((k, *((0, v) if not isinstance(v, str) else (1, v)))
                       for k, v in sorted((k, sweep_value(v)) for k, v in settings.items()))


def profile_groups(records: list[Record]) -> list[tuple[tuple[str, str], list[Record]]]:
    """Records by profile label, with the versions of their numbers ('0.7.0; curl: 0.8.0'): one
    table each (frames.select_cells refuses mixes), finished and failed, in label order."""
    groups: dict[str, list[Record]] = {}
    for r in records:
        if r.status in ("done", "failed"):
            groups.setdefault(str(r.profile_name), []).append(r)
    return sorted((((profile, numbers_versions(group)), group) for profile, group in groups.items()),
                  key=lambda kv: label_order(kv[0][0]))


def numbers_versions(records: list[Record]) -> str:
    """The harness versions of the records' numbers, the most common first, then each other one
    with the methods whose rows have it."""
    by_label: dict[str, str] = {}
    for r in records:
        by_label.setdefault(r.label, str(r.numbers_version or r.harness_version))
    counts = Counter(by_label.values()).most_common()
    others = [f"{', '.join(m for m, v in by_label.items() if v == version)}: {version}" for version, _ in counts[1:]]
    return "; ".join([counts[0][0], *others]) if counts else ""


def layout_block(anchor: str, layout: str, heading: str, body: str) -> str:
    return (f'<div class="layout" id="{anchor}-{layout}" data-layout="{layout}">\n<h4>{esc(heading)}</h4>\n'
            f"{body}</div>\n")


def run_section(anchor: str, cells: pd.DataFrame) -> str:
    return layout_block(anchor, "run", "Every metric and budget per method, as bench.run prints it", run_table(cells, wide=True, fmt_name="html"))


def tables_section(anchor: str, records: list[Record], cells: pd.DataFrame) -> str:
    """The Table-1 layout of every metric the records have, forgetting and the matrices: all from
    tables.py, as bench.report prints them."""
    out, notes = ["<h3>Table 1 layouts</h3>\n", '<div class="layouts">\n'], []
    # the OCM paper's Table-1 numbers beside ours where it has any for these methods and streams
    paper = any(paper_entry(m, s) for m, s in set(zip(cells["method"], cells["stream"])))
    summary = summary_frame(cells)
    for layout in metric_layouts():
        metric = REGISTERED[layout]
        if metric.shown_when is not None and not metric.shown_when(summary):
            notes.append(note(f"No {metric.summary_label} table: {metric.not_shown}."))
            continue
        if cells[layout].isna().all():
            continue   # said once below
        heading = METRIC_NAMES[layout]
        out.append(layout_block(anchor, layout, heading,
                                build_report(records, layout, "html", paper=paper and layout in PAPER_METRICS)))
    for name, layout in SUMMARY_LAYOUTS.items():
        out.append(layout_block(anchor, name, layout.title, build_report(records, name, "html")))
    for name, provenance in provenance_layouts().items():   # FID, KID and P/R/D/C side by side, per stream
        if any(cells[m.name].notna().any() for m in provenance_metrics(provenance)):
            out.append(layout_block(anchor, name, provenance.title, build_report(records, name, "html")))
    out.append("</div>\n")
    missing: dict = {}   # provenance -> the metric names its records lack
    for m in metric_layouts():
        if cells[m].isna().all():
            missing.setdefault(REGISTERED[m].provenance, []).append(METRIC_NAMES[m])
    for provenance, names in missing.items():
        why = (f"to compute them: {provenance.missing}" if provenance is not None and provenance.missing
               else "recorded before the harness computed them")
        notes.append(note(f"No {', '.join(names)} in these records ({why})."))
    out += notes
    matrices = build_report(records, "matrix", "html")
    shown = [f"{m.summary_label}[t, j]" for m in REGISTERED.values()
             if m.matrix_table and cells[m.matrix].notna().any()]
    count = matrices.count("<table>")
    out.append(f'<div class="layout" id="{anchor}-matrix" data-layout="matrix"><details>'
               f"<summary>Per-task matrices: {count} tables ({' and '.join(shown)} per stream and method, mean "
               f"over seeds)</summary>\n{matrices}</details></div>\n")
    return "".join(out)


def figure_caption(name: str) -> str:
    for ending, text in FIGURE_CAPTIONS.items():
        if name.endswith(ending):
            return f"{name.removesuffix(ending)}: {text}"
    if name.startswith("timeline-"):
        return ("memory (LTM, and STM + LTM before each selection; CURL: its buffer) and the number of "
                "components against the stream position, per method with a timeline and seed; "
                "▼ = an expansion")
    if name.startswith("sweep-"):
        return (f"{name.removesuffix('.png')}: the metric (mean over seeds, bars: std) against the swept "
                "setting, one line per method (markers and dashes: other settings that vary)")
    if name.startswith("seeds-"):
        return ("per stream, each method's value per seed (points) and its mean (bar); a red cross: the OCM "
                "paper's Table-1 number for the method's paper row; an arrow: a method off the panel's scale")
    if name.startswith("ranks-"):
        return ("each method's rank per stream by its mean (1 = best, ties averaged) and its average rank "
                "over the streams it has")
    return name


def figures_html(paths: list[Path]) -> str:
    """The figures, the heatmaps (one panel per method) on rows of their own."""
    return "".join(f'<figure{" class=wide" if p.name.endswith("-nll-matrix.png") else ""}>'
                   f"{image(p.read_bytes(), p.stem)}<figcaption>{esc(figure_caption(p.name))}"
                   f"</figcaption></figure>\n" for p in paths)


def figures_section(cells: pd.DataFrame, records: list[Record], folder: Path) -> str:
    """figures.py's figures of this group: heatmaps and curves per stream, timelines, ranks."""
    from bench.reporting.figures import draw_figures, draw_seed_spread, draw_timelines

    paths = draw_figures(cells, folder) + draw_seed_spread(cells, folder, COLUMNS[primary_metric().name])
    paths += draw_timelines([r for r in records if r.done], folder)
    notes = []
    if not any(r.timeline for r in records if r.done):
        notes.append(note("No timeline: no method of these records keeps one (OCM variants record their "
                          "selections, CURL its expansions)."))
    return ("<h3>Figures</h3>\n" + "".join(notes) + '<div class="figures">\n' + figures_html(paths)
            + "</div>\n")


def last_grid(record: Record, root: Path, kind: str) -> tuple[Path, int] | None:
    """The record's `kind` grid (samples, reconstructions) after its last task, if on disk."""
    tasks = len(record.test_sizes or record.metric(primary_metric().matrix) or [])
    for picture in record.pictures or []:
        if Path(picture).name == f"{kind}-after-task{tasks}.png":
            path = root / "images" / picture
            return (path, tasks) if path.is_file() else None
    return None


def real_test_grid(stream: str, data_dir=None) -> tuple[bytes | None, str]:
    """(PNG of GRID_IMAGES binarized test images, taken in turn from each task's fixed test set, in
    the sample grids' layout; what they are) or (None, why not)."""
    try:
        import torch
        from torchvision.utils import save_image

        from streams.stream import load_stream

        torch.set_num_threads(1)
        tasks = load_stream(stream, data_dir).tasks
        per_task = -(-GRID_IMAGES // len(tasks))
        images = [t.test_images[:per_task] for t in tasks]
        order = [(i % len(tasks), i // len(tasks)) for i in range(GRID_IMAGES)]
        grid = torch.stack([images[t][k] for t, k in order if k < len(images[t])])
        buffer = io.BytesIO()
        save_image(grid, buffer, format="png", **GRID_STYLE)
    except Exception as err:   # a missing dataset: the page still says everything else
        return None, f"real test images of {stream} not shown: {err}"
    what = (f"{len(grid)} real test images of {stream}, binary as the evaluator scores them (the stream's "
            "fixed binarization), taken in turn from each task's test set")
    return buffer.getvalue(), what


def samples_section(anchor: str, cells: pd.DataFrame, records: list[Record], root: Path,
                    real_grids: dict, data_dir=None) -> str:
    """Per stream: each method's samples after the last task (its lowest seed with a grid) beside
    real test images; the same cells' reconstructions, folded."""
    out = ["<h3>Samples</h3>\n"]
    done = [r for r in records if r.done]
    if not any(r.pictures for r in done):
        drawn = {bool(r.profile.get("sample_grids")) for r in done}
        why = ("the profile does not draw them (sample_grids = false; --set sample_grids=true draws them)"
               if drawn == {False} else "the records name no pictures")
        return out[0] + note(f"No sample grids: {why}.")
    for stream in dict.fromkeys(cells["stream"]):
        if stream not in real_grids:
            real_grids[stream] = real_test_grid(stream, data_dir)
        png, what = real_grids[stream]
        cards = [f'<figure class="real">{image(png, what)}<figcaption>real test images</figcaption></figure>'
                 if png else f"<figure>{note(what)}</figure>"]
        recon, missing = [], []
        for method in dict.fromkeys(cells.loc[cells["stream"] == stream, "method"]):
            mine = sorted((r for r in done if r.stream == stream and r.label == method), key=lambda r: r.seed)
            found = next(((r, grid) for r in mine if (grid := last_grid(r, root, "samples"))), None)
            if found is None:
                missing.append(method)
                continue
            record, (path, task) = found
            label = f"{method}, seed {record.seed}, after task {task}"
            cards.append(f"<figure>{image(path.read_bytes(), label)}<figcaption>{esc(label)}</figcaption>"
                         "</figure>")
            pair = last_grid(record, root, "reconstructions")
            if pair:
                recon.append(f"<figure>{image(pair[0].read_bytes(), label)}<figcaption>{esc(label)}"
                             "</figcaption></figure>")
        out.append(f"<h4>{esc(stream)}</h4>\n")
        out.append(f'<figure class="samples"><div class="grids" id="{anchor}-samples-{slug(stream)}">'
                   + "\n".join(cards) + "</div>\n"
                   "<figcaption>Each method's 64 unconditional samples after the last task (pixel "
                   "probabilities, components drawn with the model's weights), from its lowest seed with a "
                   f"grid; first, {esc(what) if png else 'no real test images'}.</figcaption></figure>\n")
        if missing:
            out.append(note(f"No sample grid on disk for {', '.join(missing)} on {stream}."))
        if recon:
            out.append("<details><summary>Reconstructions (the same cells: 8 test images per task, each "
                       "row of originals followed by its reconstructions)</summary>\n"
                       f'<div class="grids">{"".join(recon)}</div></details>\n')
    return "".join(out)


def setting_text(value) -> str:
    """A recorded setting as a reader wants it: 'key = value; ...' for a mapping, '[200, 200]' for a
    list, JSON's spelling of true, false and null (as none)."""
    if isinstance(value, dict):
        return "; ".join(f"{k} = {setting_text(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(setting_text(v) for v in value) + "]"
    if isinstance(value, bool):
        return json.dumps(value)
    if isinstance(value, float):   # 0.9649999737739563 (a float32 read back) -> 0.965
        return f"{value:.4g}"
    return "none" if value is None else str(value)


def distinct(values) -> str:
    """The different values (records that differ are joined with ' | ')."""
    texts = [setting_text(v) for v in values if v is not None]
    return " | ".join(dict.fromkeys(texts)) or "-"


def provenance_text(provenance, records: list[Record]) -> str:
    """What the records say one family was computed with (its `shown` keys; a record older than
    its field: what its version implies), or why there is nothing."""
    infos = []
    for r in records:
        info = provenance.info(r)
        if info and provenance.shown:
            info = {k: v for k, v in info.items() if k in provenance.shown}
        infos.append(info or None)
    if not any(infos):
        return f"none: no {provenance.name} numbers in these records" + (
            f" ({provenance.missing})" if provenance.missing else "")
    return distinct(infos)


def provenance_section(records: list[Record], version: str) -> str:
    """What the numbers were computed with, as the records say it."""
    done = [r for r in records if r.done]
    profile = [{k: v for k, v in r.profile.items() if k != "name"} for r in done]
    rows = [("harness version", version),
            ("profile", distinct([r.profile_name for r in done])),
            ("resolved profile", distinct(profile)),
            ("seeds", ", ".join(str(s) for s in sorted({r.seed for r in done}))),
            *[(f"{p.name} computed with", provenance_text(p, done)) for p in provenances()],
            ("torch", distinct([r.torch_version for r in done])),
            ("device", distinct([r.device for r in done])),
            ("CPU kernels", distinct([r.cpu_kernels for r in done])
             if any(r.cpu_kernels for r in done) else "not recorded"),
            ("training step", distinct([r.training_step for r in done]))]
    body = "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>\n" for k, v in rows)
    return ('<h3>Provenance</h3>\n<p>What these records say they were computed with (records that differ: '
            f'values joined with " | ").</p>\n<dl class="provenance">\n{body}</dl>\n')


def extra_text(values: list) -> str:
    """A method's extra across seeds: the mean of numbers (with the range), else the distinct values."""
    numbers = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
    if numbers and len(numbers) == len(values):
        mean = sum(numbers) / len(numbers)
        text = f"{mean:.4g}"
        return text + (f" ({min(numbers):.4g}-{max(numbers):.4g})" if min(numbers) != max(numbers) else "")
    shown = [f"{len(v)} values" if isinstance(v, list) and len(v) > 6 else setting_text(v) for v in values]
    return " | ".join(dict.fromkeys(shown))


def extras_section(records: list[Record]) -> str:
    """What each method recorded of its own (its `extra_stats()`: Record.extras), read generically:
    per stream and method, each key over the seeds."""
    done = [r for r in records if r.done and r.extras]
    if not done:
        return ""
    rows = []
    for (stream, label), group in groupby_label(done).items():
        keys = list(dict.fromkeys(k for r in group for k in r.extras))
        text = "; ".join(f"{k} {extra_text([r.extras.get(k) for r in group])}" for k in keys)
        rows.append(f"<tr><td>{esc(label)}</td><td>{esc(stream)}</td><td>{esc(text)}</td></tr>\n")
    return ("<h3>What the methods recorded of their own</h3>\n<p>Each method's own numbers (its plugin's "
            "<code>extra_stats()</code>), over its seeds: the mean of a number (and its range), else the values."
            "</p>\n<figure class=\"table extras\"><table>\n<thead><tr><th>method</th><th>stream</th><th>recorded</th>"
            "</tr></thead>\n<tbody>\n" + "".join(rows) + "</tbody></table></figure>\n")


def groupby_label(records: list[Record]) -> dict[tuple[str, str], list[Record]]:
    groups: dict[tuple[str, str], list[Record]] = {}
    for r in records:
        groups.setdefault((r.stream, r.label), []).append(r)
    return groups


def failed_section(records: list[Record]) -> str:
    failed = [r for r in records if r.status == "failed"]
    if not failed:
        return ""
    items = "".join(f"<li>{esc(r.label)} on {esc(r.stream)}, seed "
                    f"{esc(r.seed)}: {esc(str(r.error or 'no reason recorded'))}</li>\n"
                    for r in failed)
    said = note(f"{len(failed)} cell(s) failed: not in the tables (bench.run reruns them).", "note error")
    return f"<h3>Failed cells</h3>\n{said}<ul>{items}</ul>\n"


def glance_section(anchor: str, records: list[Record], cells: pd.DataFrame, folder: Path) -> str:
    """The answer first (glance.py): per stream the methods ranked by the primary metric, which
    gaps to the best are real; the paper's claims where the streams are the paper's; the ranks."""
    from bench.reporting.figures import draw_ranks
    from bench.reporting.glance import glance_tables

    metric = primary_metric()
    out = [f"<h3>At a glance: which method is best, and is it real ({esc(metric.summary_label)})</h3>\n",
           '<div class="layouts">\n']
    for stream, table in glance_tables(cells, "html").items():
        out.append(layout_block(f"{anchor}-glance", slug(stream), stream, table))
    out.append("</div>\n")
    if any(paper_entry(m, s) for m, s in set(zip(cells["method"], cells["stream"]))):
        out.append(layout_block(anchor, "claims", "The paper's claims, tested on these records",
                                build_report(records, "claims", "html")))
    if cells["stream"].nunique() > 1:
        paths = [p for m in headline_metrics() if cells[m.name].notna().any()
                 for p in draw_ranks(cells, folder, COLUMNS[m.name])]
        out.append('<div class="figures">\n' + figures_html(paths) + "</div>\n")
    else:
        out.append(note("No rank figure: one stream (the ranks are the table's order)."))
    return "".join(out)


def protocol_section(cells: pd.DataFrame) -> str:
    """The protocol every table of the section shares, said once (the captions point here)."""
    from bench.reporting.captions import protocol

    return ("<h3>How these numbers were made</h3>\n"
            f'<p class="protocol">{esc(protocol(cells))}</p>\n'
            "<p>What each metric is, and how it is estimated: docs/metrics.md; the protocol (streams, "
            "budgets, seeds): docs/protocol.md.</p>\n")


def linked_headings(anchor: str, body: str) -> tuple[str, list[tuple[str, str]]]:
    """Every <h3> of a section given an id; (the body, [(id, heading text)]) for the contents."""
    import re

    entries: list[tuple[str, str]] = []

    def with_id(match):
        ident = f"{anchor}-{slug(html.unescape(match.group(1))[:40])}"
        while ident in (e[0] for e in entries):
            ident += "-2"
        entries.append((ident, match.group(1)))
        return f'<h3 id="{ident}">{match.group(1)}</h3>'
    return re.sub(r"<h3>(.*?)</h3>", with_id, body), entries


def group_section(index: int, profile: str, version: str, records: list[Record], root: Path,
                  folder: Path, real_grids: dict, data_dir=None) -> tuple[str, str]:
    """(the section of one profile and harness version, its table-of-contents entry): the answer
    first, then the details, the protocol once at the end (every caption links to it)."""
    from bench.reporting.captions import PROTOCOL_POINTER, protocol_said_once

    anchor = f"p{index}"
    done = [r for r in records if r.done]
    title = f"Profile {profile} (harness {version})"
    head = [f'<section class="group" id="{anchor}">\n<h2>{esc(title)}</h2>\n']
    streams = list(dict.fromkeys(r.stream for r in done))
    seeds = sorted({r.seed for r in done})
    head.append(f"<p>{len(done)} finished cell(s) on {esc(', '.join(streams) or 'no stream')}; "
                f"seeds {esc(', '.join(map(str, seeds)) or '-')}.</p>\n")
    if len(seeds) == 1:
        head.append(note("One seed: no ± std over seeds and no significance marks (≈ needs 2 seeds in "
                         "common with the column's best); bench.run --seeds 0,1,2 gives them."))
    out = []
    if done:
        try:
            cells = select_cells(records, None)
        except ReportError as err:
            out.append(note(f"These records make no table: {err}", "note error"))
        else:
            with protocol_said_once():
                out.append(glance_section(anchor, records, cells, folder))
                out.append("<h3>The run's table</h3>\n" + run_section(anchor, cells))
                out.append(tables_section(anchor, records, cells))
                out.append(figures_section(cells, records, folder))
                out.append(samples_section(anchor, cells, records, root, real_grids, data_dir))
            out.append(protocol_section(cells))
    else:
        out.append(note("No finished cell of this profile.", "note error"))
    out.append(failed_section(records))
    out.append(extras_section(records))
    out.append(provenance_section(records, version))
    body, entries = linked_headings(anchor, "".join(out))
    protocol_id = next((ident for ident, text in entries if text == "How these numbers were made"), None)
    if protocol_id is not None:
        body = body.replace(esc(PROTOCOL_POINTER),
                            f'How these numbers were made: <a href="#{protocol_id}">that section</a>.')
    items = "".join(f'<li><a href="#{ident}">{text}</a></li>' for ident, text in entries)
    entry = f'<li><a href="#{anchor}">{esc(title)}</a><ul>{items}</ul></li>'
    return "".join(head) + body + "</section>\n", entry


def sweep_keys(records: list[Record]) -> list[str]:
    """Settings that take two or more values across the profile labels of one base profile."""
    from bench.planning.profiles import split_label

    values: dict[str, set] = {}
    for label in {r.profile_name for r in records if r.done}:
        _, settings = split_label(str(label))
        for key, value in settings.items():
            values.setdefault(key, set()).add(value)
    return [key for key, seen in sorted(values.items()) if len(seen) > 1]


def sweeps_section(records: list[Record], folder: Path) -> tuple[str, str]:
    """Each sweep the labels form: its table (tables.sweep_report) and figure (figures.draw_sweep),
    for NLL and, when recorded, FID."""
    from bench.reporting.figures import draw_sweep
    from bench.reporting.sweep import sweep_frame

    keys = sweep_keys(records)
    out = ['<section class="group" id="sweeps">\n<h2>Sweeps</h2>\n']
    if not keys:
        out.append(note("No sweep: no setting takes two values across these records' profile labels "
                        "(bench.run --sweep KEY=V1,V2 runs one)."))
    for key in keys:
        out.append(f"<h3>{esc(key)}</h3>\n")
        try:
            cells = sweep_frame(records, key)
            for metric in (m.name for m in headline_metrics()):
                if cells[metric].isna().all():
                    continue
                out.append(layout_block(f"sweep-{slug(key)}", metric, f"{METRIC_NAMES[metric]} against {key}",
                                        sweep_report(records, key, metric, "html")))
                paths = draw_sweep(cells, key, folder / f"{slug(key)}-{metric}", metric)
                out.append('<div class="figures">' + figures_html(paths) + "</div>\n")
        except ReportError as err:
            out.append(note(f"The records over {key} make no sweep: {err}", "note error"))
    out.append("</section>\n")
    entry = '<li><a href="#sweeps">Sweeps</a>' + (f" ({esc(', '.join(keys))})" if keys else "") + "</li>"
    return "".join(out), entry


def build_page(root: str | Path, records, command: str, data_dir=None) -> str:
    """The page of `records` (read from results directory `root`, where the sample grids are)."""
    from bench import HARNESS_VERSION

    root = Path(root)
    records = as_records(records)
    groups = profile_groups(records)
    if not any(r.done for _, rs in groups for r in rs):
        raise ReportError("no finished records in this directory")
    sections, toc, real_grids = [], [], {}
    with tempfile.TemporaryDirectory(prefix="bench-html-") as tmp:
        for index, ((profile, version), group) in enumerate(groups, 1):
            section, entry = group_section(index, profile, version, group, root, Path(tmp) / str(index),
                                           real_grids, data_dir)
            sections.append(section)
            toc.append(entry)
        section, entry = sweeps_section(records, Path(tmp) / "sweeps")
        sections.append(section)
        toc.append(entry)
    done = sum(r.done for r in records)
    failed = sum(r.status == "failed" for r in records)
    streams = sorted({r.stream for r in records if r.done})
    head = (f'<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f'<meta http-equiv="Content-Security-Policy" content="{POLICY}">\n'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>ocm-bench report: {esc(root)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n<main>\n")
    intro = (f"<h1>ocm-bench report: {esc(root)}</h1>\n"
             f"<p>{done} finished cell(s){f', {failed} failed' if failed else ''} in {len(groups)} "
             "profile(s) "
             f"on {esc(', '.join(streams))}. Page written {esc(time.strftime('%Y-%m-%d %H:%M'))} by harness "
             f"{esc(HARNESS_VERSION)}; regenerate it with</p>\n<pre>{esc(command)}</pre>\n"
             "<p>Tables, captions and figures are bench.report's own (the same code and text as "
             "<code>python -m bench.report DIR</code>); what the numbers are: docs/metrics.md. "
             "Records of different profiles or harness versions are never averaged together: each has "
             "its own section.</p>\n"
             f"<nav><strong>Contents</strong><ul>{''.join(toc)}</ul></nav>\n")
    return head + intro + "".join(sections) + "</main>\n</body>\n</html>\n"


def regenerate_command(results: str, out: str, profile: str | None = None) -> str:
    return " ".join(["python -m bench.report", shlex.quote(str(results)), "--html", shlex.quote(str(out)),
                     *(["--profile", shlex.quote(profile)] if profile else [])])


def write_page(root: str | Path, records, out: str | Path, command: str,
               data_dir=None) -> tuple[int, float]:
    """Build the page and write it to `out`; (its size in bytes, seconds taken)."""
    start = time.perf_counter()
    page = build_page(root, records, command, data_dir).encode("utf-8")
    write_atomic(out, page)   # an interrupted or failed write leaves the page that was there
    return len(page), time.perf_counter() - start
