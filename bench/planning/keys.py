"""A cell's key: a digest of everything that can change its numbers, and nothing else.

Key version 2 (harness 0.8.0) hashes, as canonical JSON:
- `numbers_version`: the harness version in which this method's numbers last changed (the later
  of the shared protocol's, `bench.NUMBERS_VERSION`, and the method's own, declared with it), so
  that a release that changes one baseline reruns that baseline's cells only;
- the method and its resolved settings (typed values: `1e-4` and `0.0001` are one number);
- the stream's name and its resolved definition (`streams.registry.stream_definition`: its
  datasets with their declared checksums, tasks, test binarization seed, order, image shape), so
  that a user's stream regenerated under the same name is a new cell;
- the seed, the resolved profile (its label spelt canonically, `max_train_per_task` among its
  fields), and a budget matched to another method's memory with its number and source.

Version 1 (harness 0.1-0.7) hashed the harness version, the method and settings, the stream's
*name*, the seed, the profile and the match. `record_key` recomputes either from a record's own
fields, so that the store can tell a record whose file name or fields were changed by hand (moved
aside, never counted), and `bench.migrate` can rename version-1 records to their version-2 keys.
"""
from __future__ import annotations

import hashlib
import json

KEY_VERSION = 2


def digest(spec: dict) -> str:
    """The first 16 hex digits of the SHA-256 of `spec` as canonical JSON (keys sorted; tuples and
    lists alike, so a spec and the record it was read back from give the same digest)."""
    blob = json.dumps(spec, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def key_spec(*, numbers_version: str, method: str, method_config: dict, stream: str,
             stream_definition: dict, seed: int, profile: dict, matched: dict | None = None) -> dict:
    """What a version-2 key hashes (`profile` without its per-method table)."""
    spec = {"key_version": KEY_VERSION, "numbers_version": numbers_version, "method": method,
            "method_config": method_config, "stream": stream, "stream_definition": stream_definition,
            "seed": seed, "profile": {k: v for k, v in profile.items() if k != "methods"}}
    if matched:
        spec["matched"] = dict(matched)
    return spec


def legacy_spec(record) -> dict:
    """What a version-1 key hashed, from a record's fields."""
    spec = {"harness_version": record.harness_version, "method": record.method,
            "method_config": record.method_config, "stream": record.stream, "seed": record.seed,
            "profile": {k: v for k, v in record.profile.items() if k != "methods"}}
    if record.matched:
        spec["matched"] = dict(record.matched)
    return spec


def record_key(record) -> str:
    """The key a record's own fields give, by the key version it was written with."""
    if (record.key_version or 1) == 1:
        return digest(legacy_spec(record))
    return digest(key_spec(numbers_version=record.numbers_version, method=record.method,
                           method_config=record.method_config, stream=record.stream,
                           stream_definition=record.stream_definition or {}, seed=record.seed,
                           profile=record.profile, matched=record.matched))
