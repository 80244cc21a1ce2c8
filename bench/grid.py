"""Grid expansion: methods x streams x seeds -> cells, each with a stable content key.

The key hashes everything that determines a cell's numbers (method and its resolved config,
stream, seed, resolved profile, harness version), so a finished cell is recognised and never run
twice, and any change of setting gives a new cell.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass

from bench import HARNESS_VERSION
from bench.profiles import Profile
from methods import METHODS, get_method
from streams import STREAMS, get_stream_spec
from streams.registry import UnknownNameError


@dataclass(frozen=True)
class Cell:
    method: str
    stream: str
    seed: int
    profile: Profile
    method_config: dict

    @property
    def spec(self) -> dict:
        """What determines the cell's numbers. The profile's per-method table is left out: this
        cell's own resolved `method_config` is in, and other methods' settings do not concern it."""
        profile = {k: v for k, v in self.profile.to_dict().items() if k != "methods"}
        return {"harness_version": HARNESS_VERSION, "method": self.method,
                "method_config": self.method_config, "stream": self.stream, "seed": self.seed,
                "profile": profile}

    @property
    def key(self) -> str:
        blob = json.dumps(self.spec, sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    @property
    def label(self) -> str:
        return f"{self.method}/{self.stream}/seed{self.seed}"


def parse_names(text: str, valid: dict, kind: str) -> list[str]:
    """'a,b' or 'all' -> names, checked against `valid` (error lists the valid names)."""
    names = list(valid) if text.strip() == "all" else [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise UnknownNameError(f"no {kind} given; valid {kind}: {', '.join(valid)}")
    for name in names:
        (get_method if kind == "methods" else get_stream_spec)(name)
    return list(dict.fromkeys(names))


def parse_seeds(text: str) -> list[int]:
    try:
        return list(dict.fromkeys(int(s) for s in text.split(",") if s.strip()))
    except ValueError:
        raise UnknownNameError(f"seeds must be comma-separated integers, not '{text}'") from None


def expand_grid(methods: list[str], streams: list[str], seeds: list[int], profile: Profile) -> list[Cell]:
    cells = []
    for stream in streams:
        for method in methods:
            spec = get_method(method)
            config = dataclasses.asdict(spec.make_config(profile.methods.get(method), stream))
            cells += [Cell(method, stream, seed, profile, config) for seed in seeds]
    return cells


__all__ = ["METHODS", "STREAMS", "Cell", "expand_grid", "parse_names", "parse_seeds"]
