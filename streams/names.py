"""The one rule for every registered name (methods, presets, streams, datasets, metrics, summaries,
layouts, evaluations, executors, feature extractors).

A registered name becomes part of file names (`records/<stream>__<method>__seed0__<key>.json`,
`images/<record>/`), labels (`reservoir[budget=500]`), command-line lists (`--methods a,b`) and
settings (`--set NAME.option=...`). So a name is lower-case letters and digits in words joined by
single '-' or '_', starting with a letter: no path separator, no space, no bracket, comma, '=',
':' or '.' (which the label and setting syntax use: `--set a.b.c=1` would not say which method),
no '__' (which separates a record name's parts), and never one of RESERVED (words the command
line gives a meaning of its own). Checked at
registration, so that a careless name is refused where it is written, with the rule.

Pure Python (the lowest layer: streams, methods and bench all import it).
"""
from __future__ import annotations

import re

NAME_PATTERN = re.compile(r"[a-z][a-z0-9]*(?:[_-][a-z0-9]+)*")
MAX_LENGTH = 64
RESERVED = frozenset({"all", "none", "auto", "default"})
RULE = ("lower-case letters and digits in words joined by single '-' or '_', starting with a "
        f"letter, at most {MAX_LENGTH} characters, not {', '.join(sorted(RESERVED))} (e.g. 'my-method')")


class RegisteredNameError(ValueError):
    """A name that cannot be registered: it breaks the rule every registered name follows."""


_registered = 0   # names registered so far, in every registry (to tell an --import that registered nothing)


def registrations() -> int:
    return _registered


def check_name(kind: str, name, registering: bool = True) -> str:
    """`name` if it follows the rule (see the module doc); else RegisteredNameError naming the
    kind, the name as given (repr, so that spaces show) and the rule."""
    if not isinstance(name, str):
        raise RegisteredNameError(f"{kind} name {name!r} is not a string; a {kind} name is {RULE}")
    if name in RESERVED:
        raise RegisteredNameError(f"{kind} name {name!r} is reserved (the command line gives it a meaning); "
                                  f"a {kind} name is {RULE}")
    if len(name) > MAX_LENGTH or not NAME_PATTERN.fullmatch(name):
        raise RegisteredNameError(f"{kind} name {name!r} is not valid: a {kind} name is {RULE}")
    if registering:
        global _registered
        _registered += 1
    return name
