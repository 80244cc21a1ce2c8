"""The result store: one JSON record per grid cell, written atomically.

`<out>/records/<stream>__<method>__seed<seed>__<key>.json`: a `bench.record.Record`'s JSON (written
by `save`, read by `read`: the one place records meet the disk). A record is written to a temporary
file in the same folder and renamed into place, so an interrupted run never leaves a half record; a
cell whose record says "done" is finished, a "failed" one is run again. A record file that does
not read as a record (a full disk, a hand edit) is moved into `records/corrupt/` with a one-line
warning, and its cell counts as not done: the next run reruns it. A record of a newer schema than
this harness reads is left where it is, with a warning, and not counted.
"""
from __future__ import annotations

import json
import os
import sys
import time
import uuid
from pathlib import Path

from bench.planning.grid import Cell
from bench.record import SCHEMA_VERSION, Record, RecordError, as_record
from streams.files import atomic_path


class ResultStore:
    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        self.records_dir = self.root / "records"

    def path(self, cell: Cell) -> Path:
        return self.records_dir / f"{cell.stream}__{cell.method}__seed{cell.seed}__{cell.key}.json"

    def artifact_dir(self, cell: Cell) -> Path:
        """Pictures of the cell live next to its record: images/<record name>/."""
        return self.root / "images" / self.path(cell).stem

    def load(self, cell: Cell) -> Record | None:
        return self.read(self.path(cell))

    def read(self, path: Path) -> Record | None:
        """The record at `path`; None if there is none, or if it is corrupt (then moved aside)."""
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            return None
        except (ValueError, UnicodeDecodeError):   # JSONDecodeError is a ValueError
            data = None
        newer = isinstance(data, dict) and isinstance(data.get("schema_version"), int) \
            and data["schema_version"] > SCHEMA_VERSION
        if newer:
            print(f"warning: {path} was written by a newer harness (record schema {data['schema_version']}); "
                  "not read", file=sys.stderr)
            return None
        try:
            return Record.from_json(data)
        except (RecordError, TypeError):
            self.quarantine(path)
            return None

    def quarantine(self, path: Path) -> None:
        """Move a corrupt record into records/corrupt/ (kept for inspection), with a warning."""
        stamp = f"{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}"   # never overwrites
        target = self.records_dir / "corrupt" / f"{path.stem}.{stamp}.json"
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.replace(path, target)
        except FileNotFoundError:   # another process moved it first
            return
        print(f"warning: corrupt record {path} moved to {target}; its cell will be rerun", file=sys.stderr)

    def is_done(self, cell: Cell) -> bool:
        record = self.load(cell)
        return record is not None and record.done

    def save(self, cell: Cell, record: Record | dict) -> Path:
        """Write `record` (a Record, or the JSON object of one) as the cell's record."""
        path = self.path(cell)
        with atomic_path(path, suffix=".json", durable=True) as tmp, open(tmp, "w") as f:
            json.dump(as_record(record).to_json(), f, indent=1, sort_keys=True)
        return path

    def log_execution(self, cell: Cell, event: str = "started") -> None:
        """Append 'key label host pid time event' to executions.log (an audit trail of every run:
        'started' when a worker begins a cell, 'saved' when its record is written)."""
        import socket

        line = f"{cell.key} {cell.label} {socket.gethostname()} {os.getpid()} {time.time():.3f} {event}\n"
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
        manifest = self.manifest()
        manifest.update({c.key: {"label": c.label, "record": self.path(c).name} for c in cells})
        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps(manifest, indent=1, sort_keys=True))

    def manifest(self) -> dict:
        path = self.root / "grid.json"
        try:
            return json.loads(path.read_text())
        except FileNotFoundError:
            return {}
        except ValueError:   # written atomically, so only a hand edit gets here
            print(f"warning: {path} is not valid JSON; treated as empty", file=sys.stderr)
            return {}

    def records(self) -> list[Record]:
        """Every record in the store (done and failed)."""
        if not self.records_dir.exists():
            return []
        paths = sorted(p for p in self.records_dir.glob("*.json") if not p.name.startswith("."))
        return [r for r in map(self.read, paths) if r is not None]
