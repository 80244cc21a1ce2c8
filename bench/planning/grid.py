"""Grid expansion: methods x streams x seeds -> cells, each with a stable content key.

The key hashes everything that determines a cell's numbers (method and its resolved config,
stream, seed, resolved profile, harness version), so a finished cell is recognised and never run
twice, and any change of setting gives a new cell.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass

from bench import HARNESS_VERSION
from bench.planning.profiles import Profile, parse_method_settings
from bench.planning.validate import MATCH_PREFIX
from bench.record import Record, as_records
from methods import METHODS, get_method
from methods.core.labels import make_label, parse_label, split_top_level
from methods.core.registry import expand_preset
from streams import STREAMS, get_stream_spec
from methods.core.settings import keyed_values
from streams.registry import UnknownNameError


@dataclass(frozen=True)
class Cell:
    method: str
    stream: str
    seed: int
    profile: Profile
    method_config: dict
    variant: str = ""                  # the method's label in tables: `method` or `method[k=v,...]`
    matched: tuple = ()                # ((setting, reference method), ...) resolved from records

    @property
    def label_method(self) -> str:
        return self.variant or self.method

    @property
    def unresolved(self) -> dict[str, str]:
        """Settings still of the form 'match:METHOD' (resolved by `resolve_matches`)."""
        return {k: v[len(MATCH_PREFIX):] for k, v in self.method_config.items()
                if isinstance(v, str) and v.startswith(MATCH_PREFIX)}

    @property
    def spec(self) -> dict:
        """What determines the cell's numbers. The profile's per-method table is left out: this
        cell's own resolved `method_config` is in, and other methods' settings do not concern it.
        A budget matched to another method's memory is in with its number and its source."""
        profile = {k: v for k, v in self.profile.to_dict().items() if k != "methods"}
        spec = {"harness_version": HARNESS_VERSION, "method": self.method,
                "method_config": self.method_config, "stream": self.stream, "seed": self.seed,
                "profile": profile}
        if self.matched:
            spec["matched"] = dict(self.matched)
        return spec

    @property
    def key(self) -> str:
        blob = json.dumps(self.spec, sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    @property
    def label(self) -> str:
        return f"{self.label_method}/{self.stream}/seed{self.seed}"


def parse_names(text: str, valid: dict, kind: str) -> list[str]:
    """'a,b' or 'all' -> names, checked against `valid` (error lists the valid names). Methods
    may be variants, 'reservoir[budget=match:ocm]': a method with its own settings."""
    names = list(valid) if text.strip() == "all" else split_top_level(text)
    if not names:
        raise UnknownNameError(f"no {kind} given; valid {kind}: {', '.join(valid)}")
    for name in names:
        if kind == "methods":
            get_method(expand_preset(*parse_label(name))[0])
        else:
            get_stream_spec(name)
    return list(dict.fromkeys(names))


def parse_seeds(text: str) -> list[int]:
    """'0,1,2' -> [0, 1, 2]: integers >= 0 (they seed torch and numpy, which refuse negatives)."""
    try:
        seeds = list(dict.fromkeys(int(s) for s in text.split(",") if s.strip()))
    except ValueError:
        raise UnknownNameError(f"seeds must be comma-separated integers >= 0, not '{text}'") from None
    if not seeds or min(seeds) < 0:
        raise UnknownNameError(f"seeds must be comma-separated integers >= 0, not '{text}'")
    return seeds


def method_config(spec, stream: str, overrides: dict | None = None) -> dict:
    """A method's settings on `stream`: its config's defaults, then the stream's own (declared
    beside the stream: `StreamSpec.method_settings`; a `-sorted` variant has its base's), then
    `overrides`. A setting declared `omitted_at_default` is left out while at its default."""
    for_stream = get_stream_spec(stream).method_settings.get(spec.name, {})
    return keyed_values(spec.make_config({**for_stream, **(overrides or {})}))


def expand_grid(methods: list[str], streams: list[str], seeds: list[int], profile: Profile) -> list[Cell]:
    """Cells in stream, method, seed order. A variant's own settings override the profile's."""
    cells = []
    for stream in streams:
        for text in methods:
            given, written = parse_label(text)
            name, own = expand_preset(given, written)   # a preset is its method with its settings
            spec = get_method(name)
            overrides = {**profile.methods.get(name, {}), **parse_method_settings(spec, own)}
            config = method_config(spec, stream, overrides)
            label = make_label(given, written) if given != name or written else ""
            cells += [Cell(name, stream, seed, profile, config, variant=label) for seed in seeds]
    return cells


class MatchError(ValueError):
    """A budget matched to another method's memory whose reference record is missing."""


def missing_reference(cell: Cell, setting: str, reference: str) -> MatchError:
    return MatchError(
        f"{cell.label}: {setting}=match:{reference} needs a finished record of '{reference}' on "
        f"{cell.stream}, seed {cell.seed}, profile {cell.profile.name} (same settings, harness "
        f"{HARNESS_VERSION}); run it first or add '{reference}' to --methods")


def reference_record(cell: Cell, reference_method: str, records) -> Record | None:
    """The finished record of `reference_method` on the cell's stream and seed, under the same
    profile settings (the profile's name aside), with the config this profile gives that method."""
    spec = get_method(reference_method)
    expected = as_json(method_config(spec, cell.stream, cell.profile.methods.get(reference_method)))
    profile = as_json({k: v for k, v in cell.profile.to_dict().items() if k not in ("methods", "name")})
    for record in as_records(records):
        if (record.done and record.method == reference_method and not record.matched
                and record.stream == cell.stream and record.seed == cell.seed
                and record.harness_version == HARNESS_VERSION and record.method_config == expected
                and {k: v for k, v in record.profile.items() if k != "name"} == profile):
            return record
    return None


def as_json(value):
    """`value` as it reads back from a JSON record (tuples become lists), for comparisons."""
    return json.loads(json.dumps(value, default=str))


def resolve_matches(cell: Cell, records) -> Cell:
    """The cell with every 'match:METHOD' setting replaced by that method's peak memory (the most
    samples it ever stored) on the same stream, seed and profile, taken from `records`."""
    unresolved = cell.unresolved
    if not unresolved:
        return cell
    config, matched = dict(cell.method_config), []
    for setting, reference in unresolved.items():
        record = reference_record(cell, reference, records)
        if record is None:
            raise missing_reference(cell, setting, reference)
        peak = record.memory_peak if record.memory_peak is not None else record.memory   # older records: none
        config[setting] = max(1, int(peak))
        matched.append((setting, reference))
    return dataclasses.replace(cell, method_config=config, matched=tuple(matched))


__all__ = ["METHODS", "STREAMS", "Cell", "MatchError", "expand_grid", "parse_names", "parse_seeds",
           "resolve_matches"]
