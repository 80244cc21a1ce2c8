"""Settings that mean "one task's length" (CURL's snapshot period, LIMix's replay size, ...).

A fixed image count would be right for one stream only: 12,000 is a Split-MNIST task, but with
`max_train_per_task=4000` a task is 4,000 images and a 12,000-image period spans three tasks. So a
method declares such a field with `task_length_field()`; its value is an image count, or `"task"`
(one task's length) or `"task*X"` (X tasks' length, X > 0), and the harness resolves it per cell
from the stream that actually runs (`resolve_task_lengths`, called by bench.evaluation.cell with
the mean training-task size after subsampling). The record keeps both: the setting as given in
`method_config` (part of the cell's key) and the resolved numbers in `resolved_settings`.
"""
from __future__ import annotations

import dataclasses
import math

TASK = "task"
TASK_LENGTH_META = "task_length"


def task_length_field(default: str | int = TASK, *, min: int | None = None, **kwargs):  # noqa: A002
    """A dataclass field whose value is an image count or `task`/`task*X` (see module doc);
    `min` bounds a count given as a number (methods/core/settings.py)."""
    from methods.core.settings import bounds_metadata

    return dataclasses.field(default=default, metadata={TASK_LENGTH_META: True, **bounds_metadata(min=min)},
                             **kwargs)


def task_length_fields(config_class: type) -> tuple[str, ...]:
    """The names of `config_class`'s task-length fields."""
    if not dataclasses.is_dataclass(config_class):
        return ()
    return tuple(f.name for f in dataclasses.fields(config_class) if f.metadata.get(TASK_LENGTH_META))


def task_multiple(value) -> float | None:
    """X for `task*X` (1.0 for `task`), None for a plain count; raises ValueError otherwise."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not an image count or 'task'/'task*X'")
    if isinstance(value, int):
        return None
    text = str(value).strip().lower()
    if text == TASK:
        return 1.0
    head, star, factor = text.partition("*")
    if head.strip() == TASK and star:
        x = float(factor)
        if math.isfinite(x) and x > 0:
            return x
    raise ValueError(f"'{value}' is not an image count or 'task' / 'task*X' (X > 0)")


def resolve_task_lengths(config, task_length: int):
    """`config` with every task-length field as an image count (`task` -> `task_length`,
    `task*X` -> round(X * task_length), at least 1); plain counts are kept."""
    changes = {}
    for name in task_length_fields(type(config)):
        factor = task_multiple(getattr(config, name))
        if factor is not None:
            changes[name] = max(1, round(factor * task_length))
    return dataclasses.replace(config, **changes) if changes else config


def require_count(config, name: str) -> int:
    """The resolved value of task-length field `name`; a clear error if nobody resolved it (a
    plugin used on a plain Avalanche strategy must be given a resolved config)."""
    value = getattr(config, name)
    if task_multiple(value) is not None:
        raise ValueError(f"{type(config).__name__}.{name} is {value!r}, one task's length: resolve it "
                         "with methods.core.task_length.resolve_task_lengths(config, images_per_task)")
    return value
