"""Figures for `python -m bench.report DIR --figures` (matplotlib, no display needed).

Per stream: the NLL[t, j] matrix as a heatmap per method (panels in a grid, at most 5 a row),
and the average NLL (and FID, when recorded) over the tasks seen so far, mean_{j <= t} M[t, j], as
a curve over task segments with all methods on one plot. Across streams (2 or more): each
method's rank per stream and its average rank (`draw_ranks`, significance.average_ranks).

Every method keeps one colour and one marker in all figures of a report (`method_styles`): 15
distinct pairs, so that 15 methods never share a line's look; axes of integer settings (task
segments, epochs) have integer ticks.
"""
from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from bench.metrics import METRICS as REGISTERED
from bench.metrics import headline_metrics, paper_metrics, primary_metric
from bench.record import Record, Timeline, as_records
from bench.reporting.frames import Column, mean_matrix, registry_rank
from bench.reporting.significance import average_ranks
from bench.reporting.sweep import sweep_summary
from methods import METHODS
from streams.files import atomic_path

# 20 colours that differ (tab10, then ten that none of it resembles) and 16 markers: method i gets
# colour i and marker i; beyond 20 both cycle, at different lengths, so pairs stay distinct longer.
COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
           "#bcbd22", "#17becf", "#000000", "#e6ab02", "#1b9e77", "#a6cee3", "#fdbf6f", "#6a3d9a",
           "#fb9a99", "#b2df8a", "#01665e", "#b15928"]
MARKERS = ["o", "s", "D", "^", "v", "<", ">", "p", "h", "X", "*", "P", "d", "8", "H", "1"]
LINESTYLES = ["-", "--", ":", "-."]
PAPER_METRICS = [m.name for m in paper_metrics()]   # the paper's Table 1 reports these
PANELS_PER_ROW = 5


def save_figure(fig, path: Path) -> None:
    """The figure as a PNG at `path`, written atomically (an interrupted report leaves the old one)."""
    with atomic_path(path, suffix=Path(path).suffix) as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight")


def method_styles(methods) -> dict[str, dict]:
    """{method: matplotlib keywords (color, marker)}: one pair per method, in registry order (then
    by name), so that the same methods get the same looks whatever order they come in."""
    ordered = sorted(dict.fromkeys(methods), key=lambda m: (registry_rank(m), m))
    return {m: {"color": COLOURS[i % len(COLOURS)], "marker": MARKERS[i % len(MARKERS)]}
            for i, m in enumerate(ordered)}


def legend_beside(ax, entries: int) -> None:
    """The legend beside the axes, never over the lines (smaller type for many entries)."""
    ax.legend(fontsize=8 if entries <= 6 else 7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)


def integer_axis(axis, values) -> None:
    """Ticks at integers only: at the values themselves when they are few, else integer steps."""
    from matplotlib.ticker import MaxNLocator

    values = sorted(set(values))
    if len(values) <= 12:
        axis.set_ticks(values, [str(int(v)) for v in values])
    else:
        axis.set_major_locator(MaxNLocator(integer=True))


def is_integral(values) -> bool:
    return all(isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)
               and float(v).is_integer() for v in values)


def seen_average(matrix: np.ndarray) -> np.ndarray:
    return np.array([matrix[t, :t + 1].mean() for t in range(len(matrix))])


def draw_figures(cells: pd.DataFrame, folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    styles = method_styles(cells["method"])
    for stream, stream_cells in cells.groupby("stream", sort=False):
        groups = list(stream_cells.groupby("method", sort=False))
        for metric in (m for m in REGISTERED.values() if m.heatmap):
            written.append(draw_heatmaps(stream, groups, metric, folder))
        for metric in headline_metrics():
            curves = [(method, mean_matrix(g, metric.matrix)) for method, g in groups]
            curves = [(m, c) for m, c in curves if c is not None]
            if not curves:
                continue
            fig, ax = plt.subplots(figsize=(5, 3.5))
            for method, matrix in curves:
                ax.plot(range(1, len(matrix) + 1), seen_average(matrix), label=method, markersize=5,
                        **styles[method])
            integer_axis(ax.xaxis, range(1, max(len(m) for _, m in curves) + 1))
            ax.set_xlabel("after task segment")
            ax.set_ylabel(f"average {metric.summary_label} over seen tasks" + (f" ({metric.unit})" if metric.unit else ""))
            ax.set_title(stream)
            legend_beside(ax, len(curves))
            written.append(folder / f"{stream}-{metric.name}-curve.png")
            save_figure(fig, written[-1])
            plt.close(fig)
    return written


def draw_heatmaps(stream: str, groups: list, metric, folder: Path) -> Path:
    """`metric`'s mean M[t, j] per method, panels in rows of at most PANELS_PER_ROW, one colour scale."""
    columns = min(len(groups), PANELS_PER_ROW)
    rows = math.ceil(len(groups) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(2.9 * columns + 1.2, 2.9 * rows + 0.6), squeeze=False)
    matrices = [mean_matrix(g, metric.matrix) for _, g in groups]
    vmin, vmax = min(m.min() for m in matrices), max(m.max() for m in matrices)
    flat = axes.ravel()
    for index, (ax, (method, group), matrix) in enumerate(zip(flat, groups, matrices)):
        image = ax.imshow(matrix, cmap="viridis_r" if metric.lower_is_better else "viridis", vmin=vmin, vmax=vmax)
        title = f"{method} (n={len(group)})"
        ax.set_title(title, fontsize=8 if len(title) <= 26 else 7)
        if index // columns == rows - 1 or index + columns >= len(groups):   # the lowest panel of its column
            ax.set_xlabel("test task j")
        if index % columns == 0:
            ax.set_ylabel("after task t")
        ticks = range(len(matrix))
        ax.set_xticks(ticks, [str(i + 1) for i in ticks])
        ax.set_yticks(ticks, [str(i + 1) for i in ticks])
    for ax in flat[len(groups):]:
        ax.set_visible(False)
    fig.colorbar(image, ax=flat[:len(groups)].tolist(), label=metric.label, shrink=0.8)
    fig.suptitle(f"{metric.summary_label}[t, j] on {stream}")
    path = folder / f"{stream}-{metric.name}-matrix.png"
    save_figure(fig, path)
    plt.close(fig)
    return path


def draw_sweep(cells: pd.DataFrame, key: str, folder: Path, metric: str | None = None) -> list[Path]:
    """`metric` against the swept setting, one line per method (and other varying setting), one
    figure per stream; a log x axis when the values span a factor of 10 or more."""
    metric = metric or primary_metric().name

    folder.mkdir(parents=True, exist_ok=True)
    summary = sweep_summary(cells, metric)
    written = []
    for stream, group in summary.groupby("stream", sort=False):
        fig, ax = plt.subplots(figsize=(7.5, 4.5))
        numeric = all(isinstance(v, (int, float)) for v in group["value"])
        styles = method_styles(summary["method"])
        rests = list(dict.fromkeys(group["rest"]))
        lines = 0
        for (method, rest), line in group.groupby(["method", "rest"], sort=False):
            line = line.sort_values("value") if numeric else line
            x = line["value"] if numeric else line["value"].astype(str)
            k = rests.index(rest)   # one colour and marker per method, one dash per other setting
            ax.errorbar(x, line["mean"], yerr=line["std"].fillna(0), capsize=3, **styles[method],
                        linestyle=LINESTYLES[k % len(LINESTYLES)], label=method + (f" [{rest}]" if rest else ""))
            lines += 1
        values = sorted(group["value"].unique()) if numeric else []
        if numeric and group["value"].min() > 0 and group["value"].max() / group["value"].min() >= 10:
            ax.set_xscale("log")
            ax.set_xticks(values, [f"{t:g}" for t in values])
            ax.xaxis.set_minor_locator(plt.NullLocator())
        elif numeric and is_integral(values):   # epochs, steps, budgets: no tick at 1.25
            integer_axis(ax.xaxis, values)
        ax.set_xlabel(key)
        m = REGISTERED[metric]
        ax.set_ylabel(f"{m.label}, {'lower' if m.lower_is_better else 'higher'} is better")
        ax.set_title(f"{stream}: {metric} against {key}")
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
        written.append(folder / f"sweep-{key.replace('.', '-')}-{stream}.png")
        save_figure(fig, written[-1])
        plt.close(fig)
    return written


def method_timeline(record: Record) -> Timeline:
    """The record's timeline with the memory keys its method declares (its `Reporting`)."""
    spec = METHODS.get(record.method or "")
    reporting = spec.reporting if spec is not None else None
    return Timeline(record.timeline, reporting.timeline_memory if reporting else None,
                    reporting.timeline_pool if reporting else ())


def draw_timelines(records, folder: Path) -> list[Path]:
    """Memory and component count against stream position for methods that record a timeline
    (OCM selections, CURL expansions; bench.record.Timeline), expansions marked; one figure per
    (profile, stream)."""
    folder.mkdir(parents=True, exist_ok=True)
    records = [r for r in as_records(records) if r.done]
    groups: dict[tuple, list[Record]] = {}
    for r in records:
        if r.timeline:
            groups.setdefault((r.profile_name, r.stream), []).append(r)
    written = []
    # the colours of the other figures: styles over every method of the records, not only these
    styles = method_styles(r.label for r in records)
    for index, ((profile, stream), group) in enumerate(groups.items()):
        fig, (mem_ax, comp_ax) = plt.subplots(2, 1, figsize=(7, 5), sharex=True,
                                              gridspec_kw={"height_ratios": [2, 1]})
        seeds = sorted({r.seed for r in group})
        faint: set[str] = set()
        marked: set[str] = set()   # what the marker-drawn methods store (buffer, memory)
        labelled: set[str] = set()   # one legend entry per method: its seeds differ by dash (title)
        for r in sorted(group, key=lambda r: (registry_rank(r.label), r.seed)):
            method = r.label
            label = method if method not in labelled else "_nolegend_"
            labelled.add(method)
            colour = styles[method]["color"]   # the method's colour; its seeds differ by dash
            dash = LINESTYLES[seeds.index(r.seed) % len(LINESTYLES)]
            timeline = method_timeline(r)
            x = timeline.positions
            stored = timeline.memory_key or "memory"
            if timeline.before_selection() is not None:   # OCM: its LTM, and what it selected from
                line, = mem_ax.step(x, timeline.memory(), where="post", label=label,
                                    color=colour, linestyle=dash)
                mem_ax.step(x, timeline.before_selection(), where="post", alpha=0.35, color=colour,
                            linestyle=dash)
                faint.add(f"faint: {' + '.join(timeline.pool)} before each selection; solid: {stored}")
            else:   # CURL, CN-DPM: their buffer at each expansion
                line, = mem_ax.plot(x, timeline.memory(), linestyle="none", label=label, **styles[method])
                marked.add(stored)
            comp_ax.step([0, *x], [1, *timeline.components], where="post", color=colour, linestyle=dash)
            expanded = timeline.expansions
            comp_ax.plot([e["position"] for e in expanded], [e["components"] for e in expanded], "v",
                         color=line.get_color())
        mem_ax.set_ylabel("samples stored")
        legend_beside(mem_ax, len(labelled))
        integer_axis(comp_ax.yaxis, range(1, 1 + max(c for r in group for c in Timeline(r.timeline).components)))
        comp_ax.set_ylabel("components")
        comp_ax.set_xlabel("stream position (images seen); ▼ = expansion")
        dashes = ", ".join(f"seed {seed} {['solid', 'dashed', 'dotted', 'dash-dot'][i % 4]}"
                           for i, seed in enumerate(seeds))
        if marked:
            faint.add(f"markers: {' or '.join(sorted(marked))} at each expansion")
        mem_ax.set_title(f"{stream}, {profile}\n{dashes}; {'; '.join(sorted(faint))}", fontsize=8)
        written.append(folder / f"timeline-{stream}-{index}.png")
        save_figure(fig, written[-1])
        plt.close(fig)
    return written


def draw_ranks(cells: pd.DataFrame, folder: Path, metric: Column) -> list[Path]:
    """A rank heatmap: rows = methods, columns = streams and the average rank (1 = best mean on the
    stream, ties averaged; blank where a method has no value; the average over the streams it has,
    '(k/N)' when that is fewer than all). Nothing drawn for a single stream (ranks on one stream
    are its table's order) or when no method has a value."""
    if cells["stream"].nunique() < 2:
        return []
    ranks = average_ranks(cells, metric)
    ranks = ranks[ranks["n_streams"] > 0]
    if ranks.empty:
        return []
    folder.mkdir(parents=True, exist_ok=True)
    streams = [c for c in ranks.columns if c not in ("avg_rank", "n_streams", "n_streams_total")]
    values = ranks[[*streams, "avg_rank"]].to_numpy(float)
    fig, ax = plt.subplots(figsize=(1.3 * (len(streams) + 1) + 2.5, 0.45 * len(ranks) + 1.6))
    image = ax.imshow(np.ma.masked_invalid(values), cmap="viridis_r", vmin=1, vmax=max(len(ranks), 2),
                      aspect="auto")
    for i, (_, r) in enumerate(ranks.iterrows()):
        for j, value in enumerate(values[i]):
            if np.isnan(value):
                continue
            partial = j == len(streams) and r["n_streams"] < r["n_streams_total"]
            text = f"{value:.2f}" + (f"\n({int(r['n_streams'])}/{int(r['n_streams_total'])})" if partial else "")
            ax.text(j, i, text, ha="center", va="center", fontsize=8,
                    color="white" if value > (len(ranks) + 1) / 2 else "black")
    ax.axvline(len(streams) - 0.5, color="white", linewidth=3)
    ax.set_xticks(range(len(streams) + 1), [*streams, "avg rank"], rotation=30, ha="right")
    ax.set_yticks(range(len(ranks)), list(ranks.index))
    fig.colorbar(image, ax=ax, label="rank (1 = best)")
    better = "lower" if metric.lower_is_better else "higher"
    ax.set_title(f"rank by mean {metric.label} ({better} is better)", fontsize=9)
    written = [folder / f"ranks-{metric.column}.png"]
    save_figure(fig, written[0])
    plt.close(fig)
    return written


def off_scale_fences(values, reach: float = 3.0) -> tuple[float, float]:
    """(low, high): a value outside is off the scale of the rest (Tukey's far-out fences: `reach`
    interquartile ranges beyond the quartiles), so that one method 500 nats away (first-k on
    mnist-fashion) does not squash every other method into a few pixels."""
    q1, q3 = np.percentile(values, [25, 75])
    spread = max(q3 - q1, 1e-9)
    return q1 - reach * spread, q3 + reach * spread


def draw_seed_spread(cells: pd.DataFrame, folder: Path, metric: Column) -> list[Path]:
    """One panel per stream: each method's value per seed (points), its mean (a bar), and, for the
    nll metrics, the OCM paper's Table-1 number for the method's paper row (a red cross): where the
    seeds disagree, and where ours and the paper's differ, at a glance. A method far off the others'
    scale is an arrow at the panel's edge with its mean. Nothing for one seed."""
    from bench.reporting.paper import paper_entry

    if cells["seed"].nunique() < 2 or cells[metric.column].isna().all():
        return []
    folder.mkdir(parents=True, exist_ok=True)
    streams = list(dict.fromkeys(cells["stream"]))
    methods = sorted(dict.fromkeys(cells["method"]), key=registry_rank)
    styles = method_styles(methods)
    fig, axes = plt.subplots(1, len(streams), figsize=(4.2 * len(streams), 0.36 * len(methods) + 1.6),
                             squeeze=False, sharey=True)
    paper_shown = False
    for ax, stream in zip(axes[0], streams):
        group = cells[cells["stream"] == stream]
        means = group.groupby("method")[metric.column].mean().dropna()
        papers = {m: e[1] for m in methods if metric.column in PAPER_METRICS
                  and (e := paper_entry(m, stream)) is not None}
        low, high = off_scale_fences([*means, *papers.values()])
        inside = [v for v in [*group[metric.column].dropna(), *papers.values()] if low <= v <= high]
        left, right = min(inside), max(inside)
        pad = 0.08 * (right - left or 1.0)
        left, right = left - pad, right + pad
        for y, method in enumerate(methods):
            values = group.loc[group["method"] == method, metric.column].dropna().to_numpy(float)
            color = styles[method]["color"]
            if len(values):
                mean = values.mean()
                if not low <= mean <= high:   # off the scale: an arrow at the edge with the mean
                    edge = right if mean > high else left
                    ax.annotate(f"{mean:.0f} ▸" if mean > high else f"◂ {mean:.0f}", (edge, y), fontsize=7,
                                color=color, ha="right" if mean > high else "left", va="center")
                else:
                    ax.plot([mean, mean], [y - 0.32, y + 0.32], color=color, linewidth=2.5,
                            zorder=2, label=None if y or ax is not axes[0][0] else "mean over seeds")
                    ax.scatter(np.clip(values, left, right), np.full(len(values), y), s=18, color=color,
                               marker=styles[method]["marker"], zorder=3, alpha=0.8)
            if method in papers:
                ax.scatter([min(max(papers[method], left), right)], [y], marker="x", color="red", s=40,
                           zorder=4, label=None if paper_shown else "the paper's Table 1")
                paper_shown = True
        ax.set_xlim(left, right)
        ax.set_ylim(len(methods) - 0.5, -0.5)
        ax.set_title(stream, fontsize=10)
        ax.set_xlabel(metric.label + (" (lower is better)" if metric.lower_is_better else " (higher is better)"),
                      fontsize=8)
        ax.grid(axis="x", alpha=0.3)
    axes[0][0].set_yticks(range(len(methods)), methods, fontsize=8)
    handles, labels = [], []
    for ax in axes[0]:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            if label not in labels:
                handles.append(handle)
                labels.append(label)
    fig.suptitle(f"{metric.label}: each seed (points), their mean (line)", fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.93))
    fig.legend(handles, labels, loc="upper right", fontsize=8, ncol=2, frameon=False)
    written = [folder / f"seeds-{metric.column}.png"]
    save_figure(fig, written[0])
    plt.close(fig)
    return written
