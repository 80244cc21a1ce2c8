"""Run grid cells: in-process for one worker, else a local process pool (one torch thread each).

Each worker writes its cell's record itself, so whatever finished before an interruption is kept.
Workers are forked after the parent has loaded the streams, so they share that memory and do not
re-import torch/Avalanche (about ten seconds each).
"""
from __future__ import annotations

import multiprocessing
import sys
from concurrent.futures import ProcessPoolExecutor, as_completed

import torch
from tqdm import tqdm

from bench.cell import run_cell
from bench.grid import Cell
from bench.store import ResultStore


def _init_worker() -> None:
    torch.set_num_threads(1)


def _run_and_save(cell: Cell, root: str, data_dir) -> dict:
    store = ResultStore(root)
    record = run_cell(cell, data_dir, store.artifact_dir(cell))
    store.save(cell, record)
    return {"status": record["status"], "error": record.get("error")}


def run_cells(cells: list[Cell], store: ResultStore, workers: int, data_dir=None,
              progress: bool = True) -> dict[str, dict]:
    """Run `cells`; returns {cell key: {"status", "error"}} for each one run."""
    outcomes = {}
    bar = tqdm(total=len(cells), desc="cells", unit="cell", file=sys.stderr, disable=not progress)
    if workers <= 1 or len(cells) <= 1:
        for cell in cells:
            outcomes[cell.key] = _run_and_save(cell, str(store.root), data_dir)
            bar.update()
    else:
        context = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(min(workers, len(cells)), mp_context=context,
                                 initializer=_init_worker) as pool:
            futures = {pool.submit(_run_and_save, c, str(store.root), data_dir): c for c in cells}
            for future in as_completed(futures):
                cell = futures[future]
                try:
                    outcomes[cell.key] = future.result()
                except Exception as err:  # noqa: BLE001 - e.g. a worker killed by the OS
                    outcomes[cell.key] = {"status": "failed", "error": f"{type(err).__name__}: {err}"}
                bar.update()
    bar.close()
    return outcomes
