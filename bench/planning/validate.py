"""Settings are checked before any cell runs: a value's type comes from the annotation of its
field in the `Profile` or the method's config dataclass, its bounds from the field's metadata
(`methods.core.settings.setting(default, min=..., above=..., choices=..., matchable=...)`), so
that `reservoir.budget=abc`, `ocm.lambda1=x` and `epochs=0` are all refused the same way, with
exit 2 and one line that says what is wrong and what is valid.

A config gets exactly the bounds it declares (no table by field name: a user's field named
`budget` or `gamma` never inherits another method's).
"""
from __future__ import annotations

import dataclasses
import math
import types
import typing

from methods.core.settings import declared_bounds

MATCH_PREFIX = "match:"
TASK_LENGTH_HINT = int | str   # a task-length setting (methods/core/task_length.py): a count or task[*X]
TRUE, FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def field_bounds(config_class: type) -> dict[str, dict]:
    """{field: bounds} of a config dataclass: what its fields declare (`setting(...)`); a field
    that declares none has none (its type is still checked)."""
    return declared_bounds(config_class) or {f.name: {} for f in dataclasses.fields(config_class)}


class SettingError(ValueError):
    """A setting of the wrong type or out of range; the message says what is valid."""


def field_types(config_class: type) -> dict[str, typing.Any]:
    hints = typing.get_type_hints(config_class)
    return {f.name: hints[f.name] for f in dataclasses.fields(config_class)}


def _optional(hint) -> tuple[typing.Any, bool]:
    """(the type inside `X | None`, whether None is allowed)."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return (args[0] if len(args) == 1 else hint), len(args) < len(typing.get_args(hint))
    return hint, False


def describe(hint) -> str:
    inner, optional = _optional(hint)
    if inner == TASK_LENGTH_HINT:
        return "an image count or 'task' / 'task*X' (one / X tasks' length)" + (" or none" if optional else "")
    name = {int: "an integer", float: "a number", bool: "true or false", str: "a word"}.get(inner)
    if name is None and typing.get_origin(inner) is tuple:
        name = "numbers separated by ':' (e.g. 0.5:0.999)"
    return (name or str(inner)) + (" or none" if optional else "")


def parse_setting(key: str, text: str, hint, bounds: dict | None = None):
    """`text` as the type annotated for `key`; 'none' (or 'all') for an optional setting is None;
    'match:METHOD' is kept for a matchable setting (resolved later from records). `bounds`: the
    field's (`field_bounds`)."""
    inner, optional = _optional(hint)
    bounds = bounds or {}
    if optional and text.lower() in ("none", "all"):
        return None
    if text.startswith(MATCH_PREFIX) and bounds.get("matchable"):
        from methods import METHODS, get_method
        from methods.core.registry import PRESETS

        reference = text[len(MATCH_PREFIX):]
        if reference in PRESETS or (reference not in METHODS and "[" in reference):
            raise SettingError(f"{key}={text}: match: takes a method at this profile's settings "
                               f"({', '.join(METHODS)}), not a preset or a variant; give its method "
                               "and run the variant as a row of its own")
        get_method(reference)   # an unknown method name lists the valid ones
        return text
    try:
        if inner == TASK_LENGTH_HINT:
            from methods.core.task_length import task_multiple

            try:
                return int(text)
            except ValueError:
                task_multiple(text)   # raises on anything but task / task*X
                return text.strip().lower()
        if inner is bool:
            if text.lower() not in TRUE + FALSE:
                raise ValueError
            return text.lower() in TRUE
        if inner is int:
            return int(text)
        if inner is float:
            return float(text)
        if typing.get_origin(inner) is tuple:
            values = tuple(float(v) for v in text.split(":"))
            if len(values) != len(typing.get_args(inner)):
                raise ValueError
            return values
        if inner is str:
            return text
    except ValueError:
        pass
    raise SettingError(f"{key} must be {describe(hint)}, not '{text}'")


def check_value(key: str, value, bounds: dict | None = None) -> None:
    """Range and choices of a parsed (or default) value. `bounds`: the field's (`field_bounds`)."""
    bounds = bounds or {}
    choices = bounds.get("choices")
    if callable(choices):   # a registry's names (feature extractors), as they are now
        choices = choices()
    if isinstance(value, str) and value.startswith("task") and choices is None:
        return   # one task's length, resolved per cell (methods/core/task_length.py)
    if choices is not None and value not in choices:
        valid = ", ".join("none" if c is None else str(c) for c in choices)
        raise SettingError(f"{key} must be one of {valid}, not '{value}'")
    if value is None or isinstance(value, (bool, str)):
        return
    for number in value if isinstance(value, tuple) else (value,):
        if isinstance(number, float) and not math.isfinite(number):
            raise SettingError(f"{key} must be a finite number, not {value}")
        if "min" in bounds and number < bounds["min"]:
            raise SettingError(f"{key} must be at least {bounds['min']}, not {value}")
        if "above" in bounds and number <= bounds["above"]:
            raise SettingError(f"{key} must be greater than {bounds['above']}, not {value}")
        if "below" in bounds and number >= bounds["below"]:
            raise SettingError(f"{key} must be less than {bounds['below']}, not {value}")
