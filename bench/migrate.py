"""`python -m bench.migrate DIR...`: give records of an earlier key definition their current keys.

A cell's key is what a finished cell is recognised by (bench/planning/keys.py). When its
definition changes (version 2, harness 0.8.0, added the stream's definition and the method's own
numbers version), records written before have keys no cell computes any more, and their cells
would run again. This command turns each schema-1 record under the given folders into schema 2,
from its own fields: `numbers_version` = the harness that wrote it, `stream_definition` = the
stream's as registered now (a user's stream: give its module with --import), `key_version` 2 and
the key those give. It renames the record file, its pictures folder (images/<record>/) and the
paths the record keeps to them, and the grid.json entries. Nothing is recomputed and no number
changes; records already of schema 2 are left as they are, so it can run any number of times.
`bench.run` runs it on its results directory before planning (one line says how many).

    python -m bench.migrate reports              # every records/ folder below reports/
    python -m bench.migrate results --dry-run    # what it would rename
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from bench.planning.keys import KEY_VERSION, digest, key_spec
from bench.record import SCHEMA_VERSION
from streams.files import atomic_path


@dataclass
class Migration:
    renamed: list[tuple[Path, Path]] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)   # (record, why)

    def summary(self) -> str:
        text = f"{len(self.renamed)} record(s) given their key-version-{KEY_VERSION} keys"
        if self.skipped:
            text += f"; {len(self.skipped)} left as they were: " + "; ".join(
                f"{p.name} ({why})" for p, why in self.skipped[:5]) + (" ..." if len(self.skipped) > 5 else "")
        return text


def record_folders(roots: list[Path]) -> list[Path]:
    """Every `records` folder at or below `roots` (not the store's corrupt/ or newer/ inside one)."""
    found = []
    for root in roots:
        candidates = [root] if root.name == "records" else [root / "records", *root.rglob("records")]
        found += [p for p in candidates if p.is_dir() and p.parent.name != "records"]
    return sorted(set(found))


def migrated(data: dict) -> dict:
    """The schema-2 JSON of a schema-1 record (raises KeyError/ValueError when it cannot be)."""
    from streams.registry import stream_definition

    definition = stream_definition(data["stream"])
    version = data.get("harness_version") or "0.0.0"
    spec = key_spec(numbers_version=version, method=data["method"], method_config=data.get("method_config") or {},
                    stream=data["stream"], stream_definition=definition, seed=data["seed"],
                    profile=data.get("profile") or {}, matched=data.get("matched") or {})
    return {**data, "numbers_version": version, "key_version": KEY_VERSION, "stream_definition": definition,
            "key": digest(spec), "schema_version": SCHEMA_VERSION}


def migrate_folder(records: Path, dry_run: bool = False, outcome: Migration | None = None) -> Migration:
    """Migrate the schema-1 records of one store's records/ folder (see the module doc)."""
    from bench.execution.store import RECORD_NAME

    outcome = outcome or Migration()
    root = records.parent
    keys = {}
    for path in sorted(records.glob("*.json")):
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError, UnicodeDecodeError):
            continue   # the store moves unreadable records aside when it meets them
        if not isinstance(data, dict) or data.get("schema_version", 1) != 1:
            continue
        match = RECORD_NAME.fullmatch(path.name)
        if match is None:
            outcome.skipped.append((path, "not a record name the store writes"))
            continue
        try:
            new = migrated(data)
        except (KeyError, ValueError, TypeError) as err:   # an unknown stream names how to load it
            outcome.skipped.append((path, f"{type(err).__name__}: {str(err).splitlines()[0]}"))
            continue
        stream, method, seed, old_key = match.groups()
        target = records / f"{stream}__{method}__seed{seed}__{new['key']}.json"
        if target.exists():
            outcome.skipped.append((path, f"{target.name} exists already"))
            continue
        outcome.renamed.append((path, target))
        keys[old_key] = (new["key"], target.name)
        if dry_run:
            continue
        images = root / "images" / path.stem
        if images.is_dir():
            os.replace(images, root / "images" / target.stem)
            new["pictures"] = [str(Path(target.stem) / Path(p).relative_to(path.stem)) if Path(p).parts[:1] == (path.stem,)
                               else p for p in new.get("pictures") or []]
        with atomic_path(target, suffix=".json", durable=True) as tmp, open(tmp, "w") as f:
            json.dump(new, f, indent=1, sort_keys=True)
        path.unlink()
    if keys and not dry_run:
        rename_in_manifest(root / "grid.json", keys)
    return outcome


def rename_in_manifest(path: Path, keys: dict[str, tuple[str, str]]) -> None:
    """grid.json's entries under their new keys and record names."""
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError):
        return
    if not isinstance(manifest, dict):
        return
    out = {}
    for key, entry in manifest.items():
        if key in keys and isinstance(entry, dict):
            new_key, name = keys[key]
            out[new_key] = {**entry, "record": name}
        else:
            out[key] = entry
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(out, indent=1, sort_keys=True))


def migrate(roots: list[Path], dry_run: bool = False) -> Migration:
    outcome = Migration()
    for folder in record_folders(roots):
        migrate_folder(folder, dry_run, outcome)
    return outcome


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.migrate", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("folders", nargs="+", help="results directories, or folders holding several")
    p.add_argument("--dry-run", action="store_true", help="say what would be renamed, change nothing")
    p.add_argument("--import", dest="imports", action="append", default=[], metavar="MODULE",
                   help="a module registering a stream the records use (as bench.run --import)")
    args = p.parse_args(argv)
    from methods.core.user_methods import UserModuleError, import_modules

    try:
        import_modules(args.imports)
    except UserModuleError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    missing = [f for f in args.folders if not Path(f).is_dir()]
    if missing:
        print(f"error: no such folder: {', '.join(missing)}", file=sys.stderr)
        return 2
    outcome = migrate([Path(f) for f in args.folders], args.dry_run)
    for old, new in outcome.renamed:
        print(f"{'would rename' if args.dry_run else 'renamed'} {old} -> {new.name}")
    print(outcome.summary(), file=sys.stderr)
    return 1 if outcome.skipped else 0


if __name__ == "__main__":
    sys.exit(main())
