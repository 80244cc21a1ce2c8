"""The result store: one JSON record per grid cell, written atomically.

`<out>/records/<stream>__<method>__seed<seed>__<key>.json`. A record is written to a temporary file
in the same folder and renamed into place, so an interrupted run never leaves a half record; a
cell whose record says "done" is finished, a "failed" one is run again.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from bench.grid import Cell


class ResultStore:
    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        self.records_dir = self.root / "records"

    def path(self, cell: Cell) -> Path:
        return self.records_dir / f"{cell.stream}__{cell.method}__seed{cell.seed}__{cell.key}.json"

    def artifact_dir(self, cell: Cell) -> Path:
        """Pictures of the cell live next to its record: images/<record name>/."""
        return self.root / "images" / self.path(cell).stem

    def load(self, cell: Cell) -> dict | None:
        path = self.path(cell)
        if not path.exists():
            return None
        return json.loads(path.read_text())

    def is_done(self, cell: Cell) -> bool:
        record = self.load(cell)
        return record is not None and record.get("status") == "done"

    def save(self, cell: Cell, record: dict) -> Path:
        self.records_dir.mkdir(parents=True, exist_ok=True)
        path = self.path(cell)
        fd, tmp = tempfile.mkstemp(dir=self.records_dir, prefix=".tmp-", suffix=".json")
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(record, f, indent=1, sort_keys=True)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path

    def log_execution(self, cell: Cell) -> None:
        """Append 'key label host pid time' to executions.log (an audit trail of every run)."""
        import socket
        import time

        line = f"{cell.key} {cell.label} {socket.gethostname()} {os.getpid()} {time.time():.3f}\n"
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / "executions.log", "a") as f:   # O_APPEND: one write per line
            f.write(line)

    def executions(self) -> list[str]:
        path = self.root / "executions.log"
        return path.read_text().splitlines() if path.exists() else []

    def write_manifest(self, cells: list[Cell]) -> None:
        """Remember the grid's cells (merged over invocations) so `bench.status` knows what is
        pending."""
        path = self.root / "grid.json"
        manifest = json.loads(path.read_text()) if path.exists() else {}
        manifest.update({c.key: {"label": c.label, "record": self.path(c).name} for c in cells})
        self.root.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".tmp-grid-")
        with os.fdopen(fd, "w") as f:
            json.dump(manifest, f, indent=1, sort_keys=True)
        os.replace(tmp, path)

    def manifest(self) -> dict:
        path = self.root / "grid.json"
        return json.loads(path.read_text()) if path.exists() else {}

    def records(self) -> list[dict]:
        """Every record in the store (done and failed)."""
        if not self.records_dir.exists():
            return []
        paths = sorted(p for p in self.records_dir.glob("*.json") if not p.name.startswith("."))
        return [json.loads(p.read_text()) for p in paths]
