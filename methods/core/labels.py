"""Labels of the form NAME[setting=value,...]: a method variant ('reservoir[budget=match:ocm]'), a
preset with more settings, an overridden profile ('quick[epochs=3]'). Parsed and written here only;
every layer that reads a label (the grid, sweeps, row order, captions' paper names) uses these."""
from __future__ import annotations

from streams.registry import UnknownNameError


def split_top_level(text: str) -> list[str]:
    """'a,b[x=1,y=2],c' -> ['a', 'b[x=1,y=2]', 'c']: commas inside brackets do not split."""
    parts, depth, current = [], 0, ""
    for ch in text:
        depth += (ch == "[") - (ch == "]")
        if ch == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += ch
    return [p.strip() for p in parts + [current] if p.strip()]


def parse_label(text: str) -> tuple[str, dict[str, str]]:
    """'reservoir[budget=match:ocm]' -> ('reservoir', {'budget': 'match:ocm'}); 'ocm' -> ('ocm', {})."""
    name, bracket, rest = text.partition("[")
    if not bracket:
        return text, {}
    if not rest.endswith("]"):
        raise UnknownNameError(f"'{text}' must look like NAME[setting=value,...]")
    settings = {}
    for item in split_top_level(rest[:-1]):
        key, sep, value = item.partition("=")
        if not sep:
            raise UnknownNameError(f"setting '{item}' in '{text}' is not of the form setting=value")
        if key.strip() in settings:
            raise UnknownNameError(f"'{text}' gives '{key.strip()}' twice: give each setting once")
        settings[key.strip()] = value.strip()
    return name.strip(), settings


def make_label(name: str, settings: dict) -> str:
    """The inverse of `parse_label`: 'NAME' or 'NAME[k=v,...]' (settings in the order given)."""
    return name if not settings else f"{name}[{','.join(f'{k}={v}' for k, v in settings.items())}]"


def canonical_text(value) -> str:
    """A parsed setting's one spelling in labels, so that `epochs=01` and `epochs=1`, `lr=1e-4` and
    `lr=0.0001`, `budget=1_000` and `budget=1000` are one label (and one cell): integers in
    decimal, floats by their shortest round-trip form without a trailing '.0', booleans as
    true/false, None as none, tuples joined by ':', words as they are."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        text = repr(value)
        return text[:-2] if text.endswith(".0") else text
    if isinstance(value, (tuple, list)):
        return ":".join(canonical_text(v) for v in value)
    return str(value)


def base_name(label: str) -> str:
    """The name a label starts with ('reservoir[budget=500]' -> 'reservoir'), without parsing its
    settings (a label read from a record is taken as it is)."""
    return label.partition("[")[0]
