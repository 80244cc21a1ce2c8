"""The method registry: `--methods all`, unknown-name errors and per-method configs come from it.

Two ways in. `register_method(name, Config, description)` decorates a `GenerativePlugin` subclass:
the method exists once its module is imported. The built-in methods are *declared* instead
(`declare_method`, in methods/catalog.py): their name, settings, description and where their
plugin class lives are known without importing torch, and the plugin's module is imported the
first time `spec.plugin_class` is asked for (a cell runs, a model is built). So listing methods,
checking settings and refusing bad input take well under a second.

Methods outside this package register with the same decorator, from a module that is imported:
by `bench.run --import MODULE`, which also names it in $OCM_BENCH_IMPORTS for worker processes
(spawned, Ray, Slurm), or by an installed package's `ocm_bench.methods` entry point. `get_method`
loads both before it calls a name unknown (methods/core/user_methods.py)."""
from __future__ import annotations

import dataclasses
import difflib
import importlib
import importlib.util
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass

from methods.core.labels import base_name, make_label
from methods.core.user_methods import count_registration, files_registering, load_all
from streams.names import check_name
from streams.registry import UnknownNameError


class MethodRegistrationError(ValueError):
    """A method name registered twice, by two different classes."""


@dataclass(frozen=True)
class Reporting:
    """What reports say of a method's own numbers, declared with it (so that no report knows a
    method by name). Each entry is optional:
    - `budget(settings)`: what it may store, for captions ('STM 512, LTM <= 2560'); default: its
      settings declared `stores_images`, as 'budget 3000';
    - `weights(settings)`: its mixture weights when they are not uniform ('the experts' counts');
    - `timeline_memory`: the key of its timeline events holding what it stores at the event
      ('ltm', 'buffer'), drawn against the stream; `timeline_pool`: keys summed for the memory an
      event chose from (OCM: its LTM and the STM it selected from);
    - `upper_bound`: the method is a reference bound, not a competitor (see the field)."""
    budget: Callable[[dict], str | None] | None = None
    weights: Callable[[dict], str | None] | None = None
    timeline_memory: str | None = None
    timeline_pool: tuple[str, ...] = ()
    # an upper bound the others are measured against (joint: i.i.d. training on all data seen so
    # far), not a competitor: never a column's best, never the best a method is tested against
    upper_bound: bool = False

    def budget_note(self, config_class: type, settings: dict) -> str | None:
        if self.budget is not None:
            try:
                return self.budget(settings)
            except KeyError:   # settings of a record that lacks some: the generic note
                pass
        from methods.core.settings import STORES_IMAGES

        stored = [f.name for f in dataclasses.fields(config_class) if f.metadata.get(STORES_IMAGES)]
        return ", ".join(f"{name} {settings[name]}" for name in stored if name in settings) or None


@dataclass(frozen=True)
class MethodSpec:
    """A registered method. `plugin` is its GenerativePlugin subclass, or for a declared built-in
    not imported yet the place it is defined, 'module:QualName' (`plugin_class` imports it)."""
    name: str
    plugin: type | str
    config_class: type
    description: str
    paper_name: str | None = None   # the method's name in the OCM paper's tables, if it has one
    needs_task_boundaries: bool = False
    # the harness version in which this method's own numbers last changed (None: never apart from
    # the shared protocol's); part of its cells' keys (bench/planning/keys.py), so that a release
    # that changes one method reruns that method's cells only
    numbers_version: str | None = None
    reporting: Reporting = Reporting()

    @property
    def plugin_class(self) -> type:
        """The plugin class (importing its module the first time, for a declared method)."""
        if isinstance(self.plugin, type):
            return self.plugin
        module, _, qualname = self.plugin.partition(":")
        loaded = importlib.import_module(module)   # its register_method decorator replaces this spec
        registered = METHODS.get(self.name)
        if registered is not None and isinstance(registered.plugin, type):
            return registered.plugin
        found: object = loaded
        for part in qualname.split("."):   # imported before this spec was (re)declared: register it again
            found = getattr(found, part, None)
        if not isinstance(found, type):
            raise MethodRegistrationError(f"method '{self.name}' is declared in {module} as {qualname}, "
                                          "but that module defines no such class")
        return register_method(self.name, self.config_class)(found)

    @property
    def loaded(self) -> bool:
        """Whether the plugin class is imported (declared methods are imported on first use)."""
        return isinstance(self.plugin, type)

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


def _declared_file(module: str) -> str | None:
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    return os.path.realpath(spec.origin) if spec is not None and spec.origin else None


def same_definition(a: type | str, b: type) -> bool:
    """The same class, or the same class statement run again (a module imported twice, reloaded,
    or a file imported both by path and by module name); `a` may be a declared 'module:QualName'."""
    if a is b:
        return True
    if isinstance(a, str):
        module, _, qualname = a.partition(":")
        if qualname != b.__qualname__:
            return False
        return module == b.__module__ or (_source_file(b) is not None and _source_file(b) == _declared_file(module))
    if a.__qualname__ != b.__qualname__:
        return False
    return a.__module__ == b.__module__ or (_source_file(a) is not None and _source_file(a) == _source_file(b))


def _where(plugin: type | str) -> str:
    return plugin.replace(":", ".") if isinstance(plugin, str) else f"{plugin.__module__}.{plugin.__qualname__}"


def _check_config(name: str, config_class) -> None:
    check_name("method", name)
    if not (isinstance(config_class, type) and dataclasses.is_dataclass(config_class)):
        raise MethodRegistrationError(f"method '{name}': its config must be a dataclass, "
                                      f"not {config_class!r}")


def declare_method(name: str, config_class: type, description: str, plugin: str, *,
                   paper_name: str | None = None, needs_task_boundaries: bool = False,
                   numbers_version: str | None = None, reporting: Reporting | None = None) -> MethodSpec:
    """Declare a method whose plugin class is `plugin` ('module:QualName'), imported on first use
    (the built-in methods, methods/catalog.py). The module's `register_method(name, config_class)`
    decorator must then register that class, with the same config and boundary needs."""
    _check_config(name, config_class)
    existing = METHODS.get(name)
    if existing is not None and not (existing.plugin == plugin or
                                     (isinstance(existing.plugin, type) and same_definition(plugin, existing.plugin))):
        raise MethodRegistrationError(f"method name '{name}' is already registered by {_where(existing.plugin)}")
    if existing is None or not existing.loaded:
        METHODS[name] = MethodSpec(name, plugin, config_class, description, paper_name, needs_task_boundaries,
                                   numbers_version, reporting or Reporting())
    count_registration()
    return METHODS[name]


def is_upper_bound(label: str) -> bool:
    """Whether the row `label` ('joint', 'joint[epochs=3]') is a registered upper bound."""
    from methods.core.labels import base_name

    spec = METHODS.get(base_name(label))
    return spec is not None and spec.reporting.upper_bound


def register_method(name: str, config_class: type, description: str | None = None,
                    paper_name: str | None = None, numbers_version: str | None = None,
                    reporting: Reporting | None = None):
    """Class decorator: register a `GenerativePlugin` subclass as method `name`.

    - `name`: what `--methods`, `--set NAME.setting=...`, tables and records call it;
    - `config_class`: a dataclass whose fields are the method's settings, typed by their
      annotations, with bounds in their metadata (`methods.core.settings.setting`); an instance
      is the plugin's `self.config`;
    - `description`: the line `bench.run --list` shows (a declared built-in's comes from its
      declaration);
    - `paper_name`: the method's name in the OCM paper's tables (e.g. 'VAE-ELBO-OCM'), which
      table captions give beside the harness's name; None for methods the paper does not list;
    - `numbers_version`: raise it (to the harness version, or any later version string) when a
      change of the method changes its numbers, so that its earlier records are not reused;
    - `reporting`: what reports say of its own numbers (`Reporting`: its budget, its mixture
      weights, its timeline's memory).

    Whether the method needs task boundaries is the class's `needs_task_boundaries`. A name taken
    by another class raises MethodRegistrationError; the same class registered again replaces
    itself."""
    _check_config(name, config_class)

    def decorate(plugin_class):
        existing = METHODS.get(name)
        if existing is not None and not same_definition(existing.plugin, plugin_class):
            raise MethodRegistrationError(
                f"method name '{name}' is already registered by {_where(existing.plugin)}; "
                f"{plugin_class.__module__}.{plugin_class.__qualname__} needs another name")
        declared = existing if existing is not None and not existing.loaded else None
        needs_boundaries = bool(getattr(plugin_class, "needs_task_boundaries", False))
        if declared is not None:
            if config_class is not declared.config_class:
                raise MethodRegistrationError(f"method '{name}': registered with config {config_class.__name__}, "
                                              f"declared with {declared.config_class.__name__}")
            if needs_boundaries != declared.needs_task_boundaries:
                raise MethodRegistrationError(f"method '{name}': the class says needs_task_boundaries="
                                              f"{needs_boundaries}, its declaration the opposite")
        text = description or (declared.description if declared else existing.description if existing else None)
        if not text:
            raise MethodRegistrationError(f"method '{name}' needs a description (the line bench.run --list shows)")
        plugin_class.name = name
        plugin_class.config_class = config_class
        paper = paper_name or (existing.paper_name if existing is not None else None)
        version = numbers_version or (existing.numbers_version if existing is not None else None)
        shown = reporting or (existing.reporting if existing is not None else Reporting())
        METHODS[name] = MethodSpec(name, plugin_class, config_class, text, paper, needs_boundaries, version, shown)
        count_registration()
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
        return make_label(self.method, self.settings)


PRESETS: dict[str, Preset] = {}


def register_preset(name: str, method: str, settings: dict, description: str,
                    paper_name: str | None = None) -> Preset:
    """Register `name` as `method[settings]` (`--methods NAME`, `NAME[more=settings]`)."""
    check_name("preset", name)
    if name in METHODS:
        raise MethodRegistrationError(f"preset '{name}' would hide the method of that name")
    count_registration()
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
    name = base_name(label)
    if name in PRESETS:
        return PRESETS[name].paper_name
    return METHODS[name].paper_name if name in METHODS else None


def get_method(name: str) -> MethodSpec:
    """The method registered as `name`. An unknown name first loads the methods of installed
    packages (entry points) and of $OCM_BENCH_IMPORTS, each once, then is looked up again."""
    if name not in METHODS:
        problems = load_all()
        if name not in METHODS:
            message = f"unknown method '{name}'; valid methods: {', '.join(METHODS)}" + (
                f"; presets: {', '.join(PRESETS)}" if PRESETS else "") + unknown_method_hint(name)
            if problems:
                message += "\n  (not loaded: " + "; ".join(problems) + ")"
            raise UnknownNameError(message)
    return METHODS[name]


def unknown_method_hint(name: str) -> str:
    """'; did you mean 'ocm-dynamic'?' for a misspelt name; for the name of a method that a file
    here registers (a forgotten --import), the --import to add; else how to load one's own."""
    close = difflib.get_close_matches(name, [*METHODS, *PRESETS], n=1, cutoff=0.75)
    if close:
        return f"; did you mean '{close[0]}'?"
    files = files_registering(name)
    if files:
        return f"; {files[0]} registers it: add --import {files[0]}"
    return "; a method of your own is loaded with --import MODULE_OR_FILE"
