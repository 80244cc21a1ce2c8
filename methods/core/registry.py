"""The method registry: `--methods all`, unknown-name errors and per-method configs come from it.

Methods outside this package register with the same decorator, from a module that is imported:
by `bench.run --import MODULE`, which also names it in $OCM_BENCH_IMPORTS for worker processes
(spawned, Ray, Slurm), or by an installed package's `ocm_bench.methods` entry point. `get_method`
loads both before it calls a name unknown (methods/core/user_methods.py)."""
from __future__ import annotations

import dataclasses
import os
import sys
from dataclasses import dataclass

from streams.registry import UnknownNameError


class MethodRegistrationError(ValueError):
    """A method name registered twice, by two different classes."""


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


def _source_file(cls: type) -> str | None:
    module = sys.modules.get(cls.__module__)
    path = getattr(module, "__file__", None)
    if path is None:
        return None
    return os.path.realpath(path)


def same_definition(a: type, b: type) -> bool:
    """The same class, or the same class statement run again (a module imported twice, reloaded,
    or a file imported both by path and by module name)."""
    if a is b:
        return True
    if a.__qualname__ != b.__qualname__:
        return False
    return a.__module__ == b.__module__ or (_source_file(a) is not None and _source_file(a) == _source_file(b))


def register_method(name: str, config_class: type, description: str, paper_name: str | None = None):
    """Class decorator: register a GenerativePlugin subclass under `name`, with its config
    dataclass (the plugin's `self.config`; its fields are the method's settings). A name taken by
    another class raises MethodRegistrationError; the same class registered again replaces itself."""
    if not (isinstance(config_class, type) and dataclasses.is_dataclass(config_class)):
        raise MethodRegistrationError(f"method '{name}': its config must be a dataclass, "
                                      f"not {config_class!r}")

    def decorate(plugin_class):
        existing = METHODS.get(name)
        if existing is not None and not same_definition(existing.plugin_class, plugin_class):
            raise MethodRegistrationError(
                f"method name '{name}' is already registered by {existing.plugin_class.__module__}."
                f"{existing.plugin_class.__qualname__}; {plugin_class.__module__}."
                f"{plugin_class.__qualname__} needs another name")
        plugin_class.name = name
        plugin_class.config_class = config_class
        METHODS[name] = MethodSpec(name, plugin_class, config_class, description, paper_name)
        return plugin_class
    return decorate


@dataclass(frozen=True)
class Preset:
    """A named method variant: `method` with `settings` (as the CLI would write them), e.g. the
    setting a paper ran a baseline with. Its name is its label in tables."""
    name: str
    method: str
    settings: dict
    description: str
    paper_name: str | None = None

    @property
    def expansion(self) -> str:
        return f"{self.method}[{','.join(f'{k}={v}' for k, v in self.settings.items())}]"


PRESETS: dict[str, Preset] = {}


def register_preset(name: str, method: str, settings: dict, description: str,
                    paper_name: str | None = None) -> Preset:
    """Register `name` as `method[settings]` (`--methods NAME`, `NAME[more=settings]`)."""
    if name in METHODS:
        raise MethodRegistrationError(f"preset '{name}' would hide the method of that name")
    PRESETS[name] = Preset(name, method, {k: str(v) for k, v in settings.items()}, description, paper_name)
    return PRESETS[name]


def expand_preset(name: str, settings: dict) -> tuple[str, dict]:
    """(method, settings) of `name[settings]`: a preset's own settings, then the given ones."""
    preset = PRESETS.get(name)
    if preset is None:
        return name, settings
    return preset.method, {**preset.settings, **settings}


def paper_name(label: str) -> str | None:
    """The OCM paper's name for a method or preset label ('cndpm-paper' -> 'CNDPM')."""
    name = label.partition("[")[0]
    if name in PRESETS:
        return PRESETS[name].paper_name
    return METHODS[name].paper_name if name in METHODS else None


def get_method(name: str) -> MethodSpec:
    """The method registered as `name`. An unknown name first loads the methods of installed
    packages (entry points) and of $OCM_BENCH_IMPORTS, each once, then is looked up again."""
    if name not in METHODS:
        from methods.core.user_methods import load_all

        problems = load_all()
        if name not in METHODS:
            message = f"unknown method '{name}'; valid methods: {', '.join(METHODS)}" + (
                f"; presets: {', '.join(PRESETS)}" if PRESETS else "")
            if problems:
                message += "\n  (not loaded: " + "; ".join(problems) + ")"
            raise UnknownNameError(message)
    return METHODS[name]
