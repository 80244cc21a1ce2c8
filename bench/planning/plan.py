"""What a `bench.run` command asks for, as a plan: its methods, streams, seeds and profiles (one per
combination of its sweeps), the grid's cells in order, and which of them wait for another cell's
record (a budget matched to another method's memory). Checked without torch; nothing runs here.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass

from bench.planning.grid import (
    Cell,
    MatchError,
    expand_grid,
    missing_reference,
    parse_names,
    parse_seeds,
    reference_record,
    resolve_matches,
)
from bench.planning.profiles import PROFILES, Profile, resolve_profile
from bench.planning.validate import SettingError
from methods import METHODS, PRESETS
from methods.core.labels import parse_label, split_top_level
from methods.core.registry import expand_preset
from streams import STREAMS


@dataclass(frozen=True)
class GridPlan:
    methods: list[str]
    streams: list[str]
    seeds: list[int]
    profiles: list[Profile]
    cells: list[Cell]            # grid order: profile, stream, method, seed

    @property
    def ready(self) -> list[Cell]:
        """The cells that can run now."""
        return [c for c in self.cells if not c.unresolved]

    @property
    def waiting(self) -> list[Cell]:
        """The cells whose settings are matched to another cell's record (the second phase)."""
        return [c for c in self.cells if c.unresolved]

    @property
    def profile_names(self) -> str:
        return ", ".join(p.name for p in self.profiles)


def plan_grid(methods: str, streams: str, seeds: str, profile: str, settings: list[str] = (),
              sweeps: list[str] = ()) -> GridPlan:
    """The plan of a command's texts ('ocm,reservoir[budget=500]', 'mini', '0,1,2', 'quick',
    ['epochs=2'], ['lr=0.001,0.0001']); unknown names and bad settings raise (UnknownNameError,
    SettingError: ValueErrors, naming what is valid)."""
    method_names = parse_names(methods, METHODS, "methods")
    stream_names = parse_names(streams, STREAMS, "streams")
    seed_list = parse_seeds(seeds)
    check_settings_given_once(settings, sweeps)
    profiles = [resolve_profile(profile, [*settings, *combo]) for combo in sweep_combinations(sweeps)]
    check_settings_used(settings, sweeps, method_names)
    if len({p.name for p in profiles}) < len(profiles):
        raise SettingError(f"--sweep {' --sweep '.join(sweeps)} gives one value twice (the same number "
                           "written two ways counts once): give each value once")
    cells = [c for p in profiles for c in expand_grid(method_names, stream_names, seed_list, p)]
    return GridPlan(method_names, stream_names, seed_list, profiles, cells)


def check_settings_given_once(settings: list[str], sweeps: list[str]) -> None:
    """Refuse a key both set and swept, or swept twice (one of the values would be dropped)."""
    set_keys = [item.partition("=")[0].strip() for item in settings]
    swept = [item.partition("=")[0].strip() for item in sweeps]
    for key in dict.fromkeys(swept):
        if swept.count(key) > 1:
            raise SettingError(f"--sweep {key}=... is given twice: give all its values in one --sweep")
        if key in set_keys:
            raise SettingError(f"{key} is given both by --set and by --sweep: give it in one of them")


def check_settings_used(settings: list[str], sweeps: list[str], method_names: list[str]) -> None:
    """Refuse a method's setting (`reservoir.budget=...`) when no method of the grid is that method:
    it would be dropped without a word, and only rename the profile (so every cell's key)."""
    set_keys = [item.partition("=")[0].strip() for item in settings]
    swept = [item.partition("=")[0].strip() for item in sweeps]
    selected = {expand_preset(*parse_label(text))[0] for text in method_names}
    for key in [*set_keys, *swept]:
        method, dot, _ = key.partition(".")
        if dot and method not in selected:
            raise SettingError(f"setting '{key}' is for method '{method}', which this grid does not run "
                               f"(methods: {', '.join(method_names)}): add it to --methods or drop the setting")


def sweep_combinations(sweeps: list[str]) -> list[list[str]]:
    """['epochs=1,3', 'lr=0.001,0.0001'] -> every combination as a list of settings."""
    axes = []
    for item in sweeps:
        key, sep, values = item.partition("=")
        values = split_top_level(values)
        if not sep or not key or not values:
            raise ValueError(f"--sweep '{item}' is not of the form KEY=V1,V2,...")
        axes.append([f"{key}={v}" for v in values])
    return [list(combo) for combo in itertools.product(*axes)] if axes else [[]]


def check_matches_possible(plan: GridPlan, records) -> None:
    """Refuse, before anything runs, a matched budget whose reference is neither recorded nor in
    this grid."""
    planned = {(c.method, c.stream, c.seed, c.profile.name) for c in plan.ready if not c.variant}
    for cell in plan.waiting:
        for setting, reference in cell.unresolved.items():
            if ((reference, cell.stream, cell.seed, cell.profile.name) not in planned
                    and reference_record(cell, reference, records) is None):
                raise missing_reference(cell, setting, reference)


def resolve_waiting(plan: GridPlan, records) -> tuple[dict[str, Cell], list[tuple[Cell, str]]]:
    """The second phase: each waiting cell with its matched settings taken from `records`, by its
    planned key ({planned key: resolved cell}), and the cells whose reference has no record
    (the reference cell failed), with why."""
    resolved, unmatched = {}, []
    for cell in plan.waiting:
        try:
            resolved[cell.key] = resolve_matches(cell, records)
        except MatchError as err:
            unmatched.append((cell, str(err)))
    return resolved, unmatched


def cells_run(plan: GridPlan, resolved: dict[str, Cell]) -> list[Cell]:
    """The grid's cells as they ran, in grid order (a waiting cell as resolved; unresolved ones left out)."""
    return [resolved.get(c.key, c) for c in plan.cells if not c.unresolved or c.key in resolved]


def listing() -> str:
    """`bench.run --list`: the methods, presets, streams and profiles, names in one aligned column."""
    width = max(len(n) for n in (*METHODS, *PRESETS, *STREAMS, *PROFILES))
    lines = ["methods:"]
    for spec in METHODS.values():
        mark = " (needs task boundaries)" if spec.needs_task_boundaries else ""
        lines.append(f"  {spec.name:<{width}}  {spec.description}{mark}")
    lines.append("presets (named variants; add settings as NAME[setting=value]):")
    lines += [f"  {p.name:<{width}}  = {p.expansion}: {p.description}" for p in PRESETS.values()]
    lines.append("streams:")
    lines += [f"  {s.name:<{width}}  {s.description}" for s in STREAMS.values()]
    lines.append("profiles:")
    lines += [f"  {p.name:<{width}}  E={p.epochs}, MC={p.mc_samples}, lr={p.lr}, K={p.eval_k}"
              for p in PROFILES.values()]
    return "\n".join(lines)
