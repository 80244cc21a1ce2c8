"""Figures for `python -m bench.report DIR --figures` (matplotlib, no display needed).

Per stream: the NLL[t, j] matrix as a heatmap per method, and the average NLL (and FID, when
recorded) over the tasks seen so far, mean_{j <= t} M[t, j], as a curve over task segments with
all methods on one plot. Across streams: each method's rank per stream and its average rank
(`draw_ranks`, significance.average_ranks).
"""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from bench.reporting.frames import Metric, mean_matrix
from bench.reporting.significance import average_ranks
from bench.reporting.sweep import sweep_summary


HEATMAPS_PER_ROW = 6   # a stream's NLL[t, j] heatmaps wrap onto more rows beyond this many methods


def wrapped(label: str) -> str:
    """A method's label broken before its settings ('reservoir\\n[budget=match:ocm]'), and long
    settings one a line, so that the titles of side-by-side heatmaps do not run into each other."""
    base, bracket, rest = label.partition("[")
    if len(rest) > 30:   # several settings: one a line
        rest = rest.replace(",", ",\n")
    return f"{base}\n{bracket}{rest}" if bracket else label


def seen_average(matrix: np.ndarray) -> np.ndarray:
    return np.array([matrix[t, :t + 1].mean() for t in range(len(matrix))])


def draw_figures(cells: pd.DataFrame, folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for stream, stream_cells in cells.groupby("stream", sort=False):
        groups = list(stream_cells.groupby("method", sort=False))
        columns = min(len(groups), HEATMAPS_PER_ROW)
        rows = -(-len(groups) // columns)
        fig, axes = plt.subplots(rows, columns, figsize=(3.2 * columns, 3.4 * rows), squeeze=False)
        matrices = [mean_matrix(g, "nll_matrix") for _, g in groups]
        vmin, vmax = min(m.min() for m in matrices), max(m.max() for m in matrices)
        for ax in axes.flat[len(groups):]:
            ax.set_axis_off()
        for ax, (method, group), matrix in zip(axes.flat, groups, matrices):
            image = ax.imshow(matrix, cmap="viridis_r", vmin=vmin, vmax=vmax)
            ax.set_title(f"{wrapped(method)} (n={len(group)})", fontsize=9)
            ax.set_xlabel("test task j")
            if ax in axes[:, 0]:
                ax.set_ylabel("after task t")
            ticks = range(len(matrix))
            ax.set_xticks(ticks, [str(i + 1) for i in ticks])
            ax.set_yticks(ticks, [str(i + 1) for i in ticks])
        fig.colorbar(image, ax=axes.ravel().tolist(), label="NLL (nats)", shrink=0.8 if rows == 1 else 0.5)
        fig.suptitle(f"NLL[t, j] on {stream}")
        written.append(folder / f"{stream}-nll-matrix.png")
        fig.savefig(written[-1], dpi=110, bbox_inches="tight")
        plt.close(fig)

        for column, label in (("nll_matrix", "average NLL over seen tasks (nats)"),
                              ("fid_matrix", "average FID over seen tasks")):
            curves = [(method, mean_matrix(g, column)) for method, g in groups]
            curves = [(m, c) for m, c in curves if c is not None]
            if not curves:
                continue
            fig, ax = plt.subplots(figsize=(5, 3.5))
            for method, matrix in curves:
                ax.plot(range(1, len(matrix) + 1), seen_average(matrix), marker="o", label=method)
            ax.set_xticks(range(1, len(curves[0][1]) + 1))   # task segments are whole numbers
            ax.set_xlabel("after task segment")
            ax.set_ylabel(label)
            ax.set_title(stream)
            ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))   # off the curves
            written.append(folder / f"{stream}-{column.split('_')[0]}-curve.png")
            fig.savefig(written[-1], dpi=110, bbox_inches="tight")
            plt.close(fig)
    return written


def draw_sweep(cells: pd.DataFrame, key: str, folder: Path, metric: str = "nll") -> list[Path]:
    """`metric` against the swept setting, one line per method (and other varying setting), one
    figure per stream; a log x axis when the values span a factor of 10 or more."""

    folder.mkdir(parents=True, exist_ok=True)
    summary = sweep_summary(cells, metric)
    written = []
    for stream, group in summary.groupby("stream", sort=False):
        fig, ax = plt.subplots(figsize=(7.5, 4.5))
        numeric = all(isinstance(v, (int, float)) for v in group["value"])
        methods = list(dict.fromkeys(group["method"]))
        rests = list(dict.fromkeys(group["rest"]))
        colours = plt.get_cmap("tab10" if len(methods) <= 10 else "tab20")
        markers, styles = "osD^v", ["-", "--", ":", "-."]
        for (method, rest), line in group.groupby(["method", "rest"], sort=False):
            line = line.sort_values("value") if numeric else line
            x = line["value"] if numeric else line["value"].astype(str)
            k = rests.index(rest)   # one colour per method, one marker and dash per other setting
            ax.errorbar(x, line["mean"], yerr=line["std"].fillna(0), capsize=3,
                        color=colours(methods.index(method)), marker=markers[k % len(markers)],
                        linestyle=styles[k % len(styles)], label=method + (f" [{rest}]" if rest else ""))
        if numeric and group["value"].min() > 0 and group["value"].max() / group["value"].min() >= 10:
            ax.set_xscale("log")
            ticks = sorted(group["value"].unique())
            ax.set_xticks(ticks, [str(t) for t in ticks])
        ax.set_xlabel(key)
        ax.set_ylabel("NLL (nats), lower is better" if metric == "nll" else metric)
        ax.set_title(f"{stream}: {metric} against {key}")
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
        written.append(folder / f"sweep-{key.replace('.', '-')}-{stream}.png")
        fig.savefig(written[-1], dpi=110, bbox_inches="tight")
        plt.close(fig)
    return written


def draw_timelines(records: list[dict], folder: Path) -> list[Path]:
    """Memory and component count against stream position for methods that record a timeline
    (OCM selections, CURL expansions), expansions marked; one figure per (profile, stream)."""
    folder.mkdir(parents=True, exist_ok=True)
    groups: dict[tuple, list[dict]] = {}
    for r in records:
        if r.get("status") == "done" and r.get("timeline"):
            groups.setdefault((r["profile_name"], r["stream"]), []).append(r)
    written = []
    for index, ((profile, stream), group) in enumerate(groups.items()):
        fig, (mem_ax, comp_ax) = plt.subplots(2, 1, figsize=(7, 5), sharex=True,
                                              gridspec_kw={"height_ratios": [2, 1]})
        for r in sorted(group, key=lambda r: (r.get("method_label") or r["method"], r["seed"])):
            label = f"{r.get('method_label') or r['method']} seed {r['seed']}"
            events = r["timeline"]
            x = [e["position"] for e in events]
            if "ltm" in events[0]:
                line, = mem_ax.step(x, [e["ltm"] for e in events], where="post", label=f"{label}: LTM")
                mem_ax.step(x, [e["ltm"] + e["stm"] for e in events], where="post", alpha=0.35,
                            color=line.get_color(), label=f"{label}: STM + LTM before selection")
            else:   # CURL: its buffer at each expansion
                line, = mem_ax.plot(x, [e.get("buffer", 0) for e in events], "s", label=f"{label}: buffer")
            comp_ax.step([0, *x], [1, *[e["components"] for e in events]], where="post",
                         color=line.get_color(), label=label)
            expanded = [e for e in events if e.get("expanded")]
            comp_ax.plot([e["position"] for e in expanded], [e["components"] for e in expanded], "v",
                         color=line.get_color())
        mem_ax.set_ylabel("samples stored")
        mem_ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.01, 1.0))   # off the lines
        comp_ax.set_ylabel("components")
        comp_ax.set_xlabel("stream position (images seen); ▼ = expansion")
        mem_ax.set_title(f"{stream}, {profile}", fontsize=8)
        written.append(folder / f"timeline-{stream}-{index}.png")
        fig.savefig(written[-1], dpi=110, bbox_inches="tight")
        plt.close(fig)
    return written


def draw_ranks(cells: pd.DataFrame, folder: Path, metric: Metric) -> list[Path]:
    """A rank heatmap: rows = methods, columns = streams and the average rank (1 = best mean on the
    stream, ties averaged; blank where a method has no value; the average over the streams it has,
    '(k/N)' when that is fewer than all). Nothing drawn when no method has a value."""
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
    fig.savefig(written[0], dpi=110, bbox_inches="tight")
    plt.close(fig)
    return written
