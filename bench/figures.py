"""Figures for `python -m bench.report DIR --figures` (matplotlib, no display needed).

Per stream: the NLL[t, j] matrix as a heatmap per method, and the average NLL (and FID, when
recorded) over the tasks seen so far, mean_{j <= t} M[t, j], as a curve over task segments with
all methods on one plot.
"""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from bench.report import mean_matrix


def seen_average(matrix: np.ndarray) -> np.ndarray:
    return np.array([matrix[t, :t + 1].mean() for t in range(len(matrix))])


def draw_figures(cells: pd.DataFrame, folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for stream, stream_cells in cells.groupby("stream", sort=False):
        groups = list(stream_cells.groupby("method", sort=False))
        fig, axes = plt.subplots(1, len(groups), figsize=(3.2 * len(groups), 3.2), squeeze=False)
        matrices = [mean_matrix(g, "nll_matrix") for _, g in groups]
        vmin, vmax = min(m.min() for m in matrices), max(m.max() for m in matrices)
        for ax, (method, group), matrix in zip(axes[0], groups, matrices):
            image = ax.imshow(matrix, cmap="viridis_r", vmin=vmin, vmax=vmax)
            ax.set_title(f"{method} (n={len(group)})", fontsize=9)
            ax.set_xlabel("test task j")
            if ax is axes[0][0]:
                ax.set_ylabel("after task t")
            ticks = range(len(matrix))
            ax.set_xticks(ticks, [str(i + 1) for i in ticks])
            ax.set_yticks(ticks, [str(i + 1) for i in ticks])
        fig.colorbar(image, ax=axes[0].tolist(), label="NLL (nats)", shrink=0.8)
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
            ax.set_xlabel("after task segment")
            ax.set_ylabel(label)
            ax.set_title(stream)
            ax.legend(fontsize=8)
            written.append(folder / f"{stream}-{column.split('_')[0]}-curve.png")
            fig.savefig(written[-1], dpi=110, bbox_inches="tight")
            plt.close(fig)
    return written
