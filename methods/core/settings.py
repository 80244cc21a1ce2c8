"""A setting's bounds, declared with the setting itself: `setting(3000, min=1)` is a dataclass
field whose metadata says which values are valid, so that `bench.run` refuses `--set
NAME.budget=0` before any cell runs (exit 2, one line) instead of a cell failing later.

    @dataclass(frozen=True)
    class WindowConfig:
        budget: int = setting(3000, min=1, matchable=True)   # images kept
        decay: float = setting(0.5, above=0.0)               # > 0
        order: str = setting("fifo", choices=("fifo", "lifo"))

Bounds (each optional): `min` (value >= min), `above` (value > above), `below` (value < below;
a tuple's bounds hold for each of its numbers), `choices` (one of these, or a callable giving
them, for a registry that can grow;
None in the tuple allows none), `matchable` (the value may be `match:METHOD`, another method's peak
memory, resolved from its record). `omitted_at_default=True`: while the setting is at its default it
is left out of the cell's settings, key and record (a setting added after records were written,
whose default is the behaviour they were written with: their cells keep their keys). The type comes from the field's annotation (int, float, bool,
str, `X | None`, tuples, `int | str` for task lengths); a field without `setting()` has no bounds.

Pure Python: importing it imports no torch (the registry and the command line read it).
"""
from __future__ import annotations

import dataclasses

BOUND_KEYS = ("min", "above", "below", "choices", "matchable")
OMITTED_AT_DEFAULT = "omitted_at_default"
STORES_IMAGES = "stores_images"   # the setting is a count of images the method keeps in memory


def bounds_metadata(min=None, above=None, choices=None, matchable=False, below=None) -> dict:  # noqa: A002
    """The metadata entries of the given bounds (only those given)."""
    meta = {}
    if min is not None:
        meta["min"] = min
    if above is not None:
        meta["above"] = above
    if below is not None:
        meta["below"] = below
    if choices is not None:   # a callable: the choices of a registry, asked when a value is checked
        meta["choices"] = choices if callable(choices) else tuple(choices)
    if matchable:
        meta["matchable"] = True
    return meta


def setting(default=dataclasses.MISSING, *, min=None, above=None, below=None, choices=None,  # noqa: A002
            matchable: bool = False, omitted_at_default: bool = False, stores_images: bool = False,
            metadata: dict | None = None, **kwargs):
    """A dataclass field with its bounds in its metadata (see the module doc). Without a default
    the field is required (as the profile's fields are). `stores_images`: the value is a number of
    images the method holds in memory (a budget, a buffer), so that a grid whose memories cannot
    fit in the machine's is refused before it starts."""
    meta = {**(metadata or {}), **bounds_metadata(min, above, choices, matchable, below)}
    if omitted_at_default:
        meta[OMITTED_AT_DEFAULT] = True
    if stores_images:
        meta[STORES_IMAGES] = True
    return dataclasses.field(default=default, metadata=meta, **kwargs)


def keyed_values(config) -> dict:
    """A config's values as a cell's settings (`dataclasses.asdict`): every field, but those declared
    `omitted_at_default` while they are at their default."""
    values = dataclasses.asdict(config)
    for f in dataclasses.fields(config):
        if f.metadata.get(OMITTED_AT_DEFAULT) and values[f.name] == f.default:
            del values[f.name]
    return values


def declared_bounds(config_class: type) -> dict[str, dict] | None:
    """{field: its bounds} of a config dataclass, or None when no field declares any."""
    if not dataclasses.is_dataclass(config_class):
        return None
    bounds = {f.name: {k: f.metadata[k] for k in BOUND_KEYS if k in f.metadata}
              for f in dataclasses.fields(config_class)}
    return bounds if any(bounds.values()) else None


def stored_images(config_class: type, values: dict) -> int:
    """How many images a method with these settings may hold at once: the sum of its integer
    settings declared `stores_images` (a matched or task-length value, resolved later, counts 0)."""
    if not dataclasses.is_dataclass(config_class):
        return 0
    return sum(values[f.name] for f in dataclasses.fields(config_class)
               if f.metadata.get(STORES_IMAGES) and isinstance(values.get(f.name), int)
               and not isinstance(values.get(f.name), bool))
