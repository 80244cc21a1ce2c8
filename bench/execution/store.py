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
import re
import sys
import time
import uuid
from pathlib import Path

from bench.planning.grid import Cell
from bench.planning.keys import record_key
from bench.record import SCHEMA_VERSION, Record, RecordError, as_record
from streams.files import atomic_path
from streams.names import check_name

KEY_PATTERN = re.compile(r"[0-9a-f]{16}")
RECORD_NAME = re.compile(r"(.+?)__(.+?)__seed(\d+)__([0-9a-f]{16})\.json")


def is_newer(data) -> bool:
    """Whether a record's JSON is of a newer schema than this harness reads."""
    return (isinstance(data, dict) and isinstance(data.get("schema_version"), int)
            and not isinstance(data["schema_version"], bool) and data["schema_version"] > SCHEMA_VERSION)


def name_mismatch(path: Path, record: Record) -> str | None:
    """Why a record's file name and fields disagree (a record copied or renamed by hand: a seed-0
    record under seed 1's name would count as seed 1), or None. Records of key version 2 also
    recompute their key from their fields."""
    match = RECORD_NAME.fullmatch(path.name)
    if match is None:
        return None   # not a name the store writes: nothing to compare
    stream, method, seed, key = match.groups()
    said = {"stream": stream, "method": method, "seed": int(seed), "key": key}
    found = {"stream": record.stream, "method": record.method, "seed": record.seed, "key": record.key}
    wrong = [f"{k} {found[k]!r} where its name says {said[k]!r}" for k in said if found[k] != said[k]]
    if wrong:
        return "its " + ", ".join(wrong)
    if (record.key_version or 1) >= 2 and record_key(record) != key:
        return f"its fields give key {record_key(record)}, not the {key} it states"
    return None


def record_stem(cell: Cell) -> str:
    """'<stream>__<method>__seed<seed>__<key>': built only from checked parts (registered names follow
    streams/names.py's rule, the seed is an integer, the key hexadecimal), so that no cell, however
    it was made, names a file outside records/ or one that reads back as another cell's."""
    check_name("stream", cell.stream, registering=False)
    check_name("method", cell.method, registering=False)
    if not isinstance(cell.seed, int) or isinstance(cell.seed, bool) or not KEY_PATTERN.fullmatch(cell.key):
        raise ValueError(f"cell {cell.label}: seed {cell.seed!r} and key {cell.key!r} cannot name a record")
    return f"{cell.stream}__{cell.method}__seed{cell.seed}__{cell.key}"


def record_stem_of(record: Record) -> str:
    """A record's file name without '.json' (the same as `record_stem` of its cell)."""
    return f"{record.stream}__{record.method}__seed{record.seed}__{record.key}"


class ResultStore:
    """`read_only`: a baseline study read beside a run (bench.run --baseline): nothing in it is
    moved or written; a record that cannot be counted is only said."""

    def __init__(self, root: str | os.PathLike, read_only: bool = False):
        self.root = Path(root)
        self.records_dir = self.root / "records"
        self.read_only = read_only

    def path(self, cell: Cell) -> Path:
        return self.records_dir / f"{record_stem(cell)}.json"

    def artifact_dir(self, cell: Cell) -> Path:
        """Pictures of the cell live next to its record: images/<record name>/."""
        return self.root / "images" / self.path(cell).stem

    def checkpoint_path(self, cell: Cell) -> Path:
        """The cell's checkpoint while it runs: checkpoints/<record name>.pt (bench/evaluation/checkpoint.py)."""
        return self.root / "checkpoints" / f"{self.path(cell).stem}.pt"

    def model_path(self, cell: Cell) -> Path:
        """The cell's final model when kept (`--keep-models`): models/<record name>.pt (bench/models.py)."""
        return self.root / "models" / f"{self.path(cell).stem}.pt"

    def load(self, cell: Cell) -> Record | None:
        """The cell's record, if its file holds a record of this very cell: one whose own fields
        give the cell's key (bench/planning/keys.py). Anything else there is moved aside."""
        path = self.path(cell)
        record = self.read(path)
        if record is not None and record_key(record) != cell.key:
            self.quarantine(path, f"its fields give key {record_key(record)}, not the {cell.key} its name says")
            return None
        return record

    def read(self, path: Path) -> Record | None:
        """The record at `path`; None if there is none, or if it is corrupt, or its fields are not
        the ones its file name says (then moved aside). A record of a newer schema is left."""
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            return None
        except (ValueError, UnicodeDecodeError):   # JSONDecodeError is a ValueError
            data = None
        if is_newer(data):
            print(f"warning: {path} was written by a newer harness (record schema {data['schema_version']}); "
                  "not read", file=sys.stderr)
            return None
        try:
            record = Record.from_json(data)
        except (RecordError, TypeError) as err:
            self.quarantine(path, str(err) if isinstance(err, RecordError) else "not a record")
            return None
        mismatch = name_mismatch(path, record)
        if mismatch:
            self.quarantine(path, mismatch)
            return None
        return record

    def quarantine(self, path: Path, why: str = "not a record", folder: str = "corrupt") -> Path | None:
        """Move a record that cannot be counted into records/<folder>/ (kept for inspection), with
        a warning saying why."""
        if self.read_only:
            print(f"warning: record {path} is not counted ({why}); left as it is (read-only)", file=sys.stderr)
            return None
        stamp = f"{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}"   # never overwrites
        target = self.records_dir / folder / f"{path.stem}.{stamp}.json"
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.replace(path, target)
        except FileNotFoundError:   # another process moved it first
            return None
        if folder == "corrupt":
            print(f"warning: corrupt record {path} moved to {target} ({why}); its cell will be rerun",
                  file=sys.stderr)
        return target

    def is_done(self, cell: Cell) -> bool:
        record = self.load(cell)
        return record is not None and record.done

    def save(self, cell: Cell, record: Record | dict) -> Path:
        if self.read_only:
            raise PermissionError(f"{self.root} is read-only here (a baseline)")
        return self._save(cell, record)

    def _save(self, cell: Cell, record: Record | dict) -> Path:
        """Write `record` (a Record, or the JSON object of one) as the cell's record. A record of a
        newer schema in its place (a newer harness shares the directory) is moved to
        records/newer/ first, never overwritten."""
        path = self.path(cell)
        try:
            if is_newer(json.loads(path.read_text())):
                target = self.quarantine(path, folder="newer")
                print(f"warning: {path} was written by a newer harness; moved to {target}", file=sys.stderr)
        except (OSError, ValueError, UnicodeDecodeError):
            pass
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
        """{key: {'label', 'record'}} of the grids run into this directory. A grid.json that is not
        one (a hand edit, a copy cut short: it is written atomically) is rebuilt from the records
        and the claims, with a warning: cells that never started are listed again when their grid
        is rerun."""
        path = self.root / "grid.json"
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            return {}
        except (ValueError, UnicodeDecodeError):
            data = None
        if isinstance(data, dict) and all(isinstance(v, dict) and isinstance(v.get("record"), str)
                                          for v in data.values()):
            return data
        rebuilt = self.recovered_manifest()
        print(f"warning: {path} is not a grid manifest; rebuilt from {len(rebuilt)} record(s) and claim(s) "
              "(cells that never started are listed again when their grid is rerun)", file=sys.stderr)
        return rebuilt

    def recovered_manifest(self) -> dict:
        """The manifest that the records and the claims of this directory give."""
        names = [p.name for p in self.records_dir.glob("*.json")] if self.records_dir.is_dir() else []
        claims = self.root / "claims"
        names += [p.name[:-len(".claim")] + ".json" for p in claims.glob("*.claim")] if claims.is_dir() else []
        out = {}
        for name in names:
            match = RECORD_NAME.fullmatch(name)
            if match:
                stream, method, seed, key = match.groups()
                out[key] = {"label": f"{method}/{stream}/seed{seed}", "record": name}
        return out

    def records(self) -> list[Record]:
        """Every record in the store (done and failed)."""
        if not self.records_dir.exists():
            return []
        paths = sorted(p for p in self.records_dir.glob("*.json") if not p.name.startswith("."))
        return [r for r in map(self.read, paths) if r is not None]
