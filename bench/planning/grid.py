"""Grid expansion: methods x streams x seeds -> cells, each with a stable content key.

The key hashes everything that determines a cell's numbers (bench/planning/keys.py: method and
its resolved config, the stream's definition, seed, resolved profile, the version of the method's
numbers), so a finished cell is recognised and never run twice, and any change gives a new cell.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from functools import cached_property

from bench import NUMBERS_VERSION, version_tuple
from bench.planning.keys import digest, key_spec
from bench.planning.profiles import Profile, parse_method_settings
from bench.planning.validate import MATCH_PREFIX
from bench.record import Record, as_records
from methods import METHODS, get_method
from methods.core.labels import canonical_text, make_label, parse_label, split_top_level
from methods.core.registry import expand_preset
from methods.core.settings import keyed_values
from streams import STREAMS, get_stream_spec
from streams.registry import UnknownNameError, stream_definition


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
    def numbers_version(self) -> str:
        """The harness version of this cell's numbers: the later of the shared protocol's and
        its method's own (bench/planning/keys.py)."""
        return numbers_version(self.method)

    @cached_property
    def spec(self) -> dict:
        """What determines the cell's numbers (bench/planning/keys.py). The profile's per-method
        table is left out: this cell's own resolved `method_config` is in, and other methods'
        settings do not concern it. A budget matched to another method's memory is in with its
        number and its source."""
        return key_spec(numbers_version=self.numbers_version, method=self.method,
                        method_config=self.method_config, stream=self.stream,
                        stream_definition=stream_definition(self.stream), seed=self.seed,
                        profile=self.profile.to_dict(), matched=dict(self.matched))

    @property
    def key(self) -> str:
        return digest(self.spec)

    @property
    def label(self) -> str:
        return f"{self.label_method}/{self.stream}/seed{self.seed}"


def numbers_version(method: str) -> str:
    """The later of the shared protocol's numbers version and `method`'s own."""
    own = get_method(method).numbers_version
    return max(NUMBERS_VERSION, own or NUMBERS_VERSION, key=version_tuple)


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


MAX_SEED = 2 ** 32 - 1   # numpy refuses larger seeds (np.random.seed in every cell)


def parse_seeds(text: str) -> list[int]:
    """'0,1,2' -> [0, 1, 2]: integers from 0 to MAX_SEED (they seed torch and numpy, which refuse
    negatives, and numpy refuses 2^32 and more)."""
    message = f"seeds must be comma-separated integers from 0 to {MAX_SEED}, not '{text}'"
    try:
        seeds = list(dict.fromkeys(int(s) for s in text.split(",") if s.strip()))
    except ValueError:
        raise UnknownNameError(message) from None
    if not seeds or min(seeds) < 0 or max(seeds) > MAX_SEED:
        raise UnknownNameError(message)
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
            parsed = parse_method_settings(spec, own)
            overrides = {**profile.methods.get(name, {}), **parsed}
            config = method_config(spec, stream, overrides)
            # the label in tables: the settings as written, each in its one spelling
            label = make_label(given, {k: canonical_text(parsed[k]) for k in written}) if given != name or written else ""
            cells += [Cell(name, stream, seed, profile, config, variant=label) for seed in seeds]
    return cells


class MatchError(ValueError):
    """A budget matched to another method's memory whose reference record is missing."""


def missing_reference(cell: Cell, setting: str, reference: str) -> MatchError:
    if reference == cell.method:
        return MatchError(f"{cell.label}: {setting}=match:{reference} matches the method to itself; "
                          "match another method's memory (e.g. match:ocm)")
    return MatchError(
        f"{cell.label}: {setting}=match:{reference} needs a finished record of '{reference}' on "
        f"{cell.stream}, seed {cell.seed}, profile {cell.profile.name} (same settings, numbers of harness "
        f"{numbers_version(reference)}); run it first or add '{reference}' to --methods")


def reference_record(cell: Cell, reference_method: str, records) -> Record | None:
    """The finished record of `reference_method` on the cell's stream and seed, under the same
    profile settings (the profile's name aside), with the config this profile gives that method."""
    spec = get_method(reference_method)
    expected = as_json(method_config(spec, cell.stream, cell.profile.methods.get(reference_method)))
    profile = as_json({k: v for k, v in cell.profile.to_dict().items() if k not in ("methods", "name")})
    for record in as_records(records):
        if (record.done and record.method == reference_method and not record.matched
                and record.stream == cell.stream and record.seed == cell.seed
                and record_numbers_version(record) == numbers_version(reference_method)
                and record.stream_definition == as_json(stream_definition(cell.stream))
                and record.method_config == expected
                and {k: v for k, v in record.profile.items() if k != "name"} == profile):
            return record
    return None


def record_numbers_version(record: Record) -> str | None:
    """The version of a record's numbers (records before 0.8 name only the harness that wrote them)."""
    return record.numbers_version or record.harness_version


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
