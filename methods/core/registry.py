"""The method registry: `--methods all`, unknown-name errors and per-method configs come from it."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from streams.registry import UnknownNameError


@dataclass(frozen=True)
class MethodSpec:
    name: str
    plugin_class: type
    config_class: type
    description: str
    paper_name: str | None = None   # the method's name in the OCM paper's tables, if it has one

    @property
    def needs_task_boundaries(self) -> bool:
        return self.plugin_class.needs_task_boundaries

    def make_config(self, overrides: dict | None = None):
        """The method's config: its defaults updated by `overrides` (unknown keys raise). Per-stream
        defaults (OCM's expansion threshold) are the planner's: bench/planning/defaults.py."""
        fields = {f.name: f for f in dataclasses.fields(self.config_class)}
        for key in overrides or {}:
            if key not in fields:
                raise UnknownNameError(
                    f"method '{self.name}' has no setting '{key}'; valid: {', '.join(fields) or 'none'}")
        return dataclasses.replace(self.config_class(), **(overrides or {}))


METHODS: dict[str, MethodSpec] = {}


def register_method(name: str, config_class: type, description: str, paper_name: str | None = None):
    """Class decorator: register a GenerativePlugin subclass under `name`, with its config
    dataclass (the plugin's `self.config`; its fields are the method's settings)."""
    def decorate(plugin_class):
        plugin_class.name = name
        plugin_class.config_class = config_class
        METHODS[name] = MethodSpec(name, plugin_class, config_class, description, paper_name)
        return plugin_class
    return decorate


def get_method(name: str) -> MethodSpec:
    if name not in METHODS:
        raise UnknownNameError(f"unknown method '{name}'; valid methods: {', '.join(METHODS)}")
    return METHODS[name]
