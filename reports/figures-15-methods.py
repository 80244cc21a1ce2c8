"""The report's figures at 15 methods, drawn from made-up records (tests/synthetic_records.py), to
see that they stay readable as methods are added: `python reports/figures-15-methods.py` (from
the repository root) draws them into a temporary folder and puts four of them side by side in
reports/figures-15-methods.png (the NLL-matrix panels, the NLL curves, an epochs sweep, the ranks
over two streams). The numbers are not measurements."""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import synthetic_records as sr  # noqa: E402
from bench.reporting.figures import draw_figures, draw_ranks, draw_sweep, draw_timelines  # noqa: E402
from bench.reporting.frames import METRICS, select_cells  # noqa: E402
from bench.reporting.sweep import sweep_frame  # noqa: E402


def main(out: Path = ROOT / "reports" / "figures-15-methods.png") -> list[Path]:
    folder = Path(tempfile.mkdtemp(prefix="figures-15-"))
    records = sr.grid(sr.FIFTEEN, streams=("mini", "split-mnist"))
    cells = select_cells(records, None)
    written = draw_figures(cells, folder) + draw_ranks(cells, folder, METRICS["nll"])
    written += draw_timelines([r for r in records if r["stream"] == "mini"], folder)
    sweep = [sr.record(m, "mini", seed, sweep={"epochs": e}) for m in sr.FIFTEEN for seed in (0, 1)
             for e in (1, 2, 3, 4, 5)]
    written += draw_sweep(sweep_frame(sweep, "epochs"), "epochs", folder)
    chosen = [folder / "mini-nll-matrix.png", folder / "mini-nll-curve.png", folder / "sweep-epochs-mini.png",
              folder / "ranks-nll.png"]
    images = [plt.imread(p) for p in chosen]
    fig = plt.figure(figsize=(16, 14), dpi=110)
    grid = fig.add_gridspec(2, 3, height_ratios=[1.15, 1])
    axes = [fig.add_subplot(grid[0, :]), fig.add_subplot(grid[1, 0]), fig.add_subplot(grid[1, 1]),
            fig.add_subplot(grid[1, 2])]
    for ax, image, path in zip(axes, images, chosen):
        ax.imshow(image)
        ax.set_title(path.name, fontsize=9, color="0.4")
        ax.axis("off")
    fig.suptitle("bench.report --figures at 15 methods (made-up records: tests/synthetic_records.py)", fontsize=11)
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)
    print(f"wrote {out} (from {', '.join(p.name for p in chosen)}; all figures in {folder})")
    return written


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "reports" / "figures-15-methods.png")
