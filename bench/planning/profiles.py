"""The one table of profile defaults. Every record stores its resolved profile.

- smoke: tests and CI (seconds per cell): streams truncated, tiny memories, few importance samples,
  no FID and no pictures
  (OCM's STM holds 128 so that selections happen; OCM-IW50 uses 5 samples; OCM-dynamic
  lambda2 = 2 so that it expands in a short run; CN-DPM sleeps
  when its STM holds 256, for 100 steps; LIMix gates on 256 images, threshold 30 nats so that a
  smoke run both reuses and expands). CURL's snapshot period and LIMix's replay size are one
  (truncated) task's length in every profile, CURL's waits 1% of one (methods/core/task_length.py).
- quick: the 2-core CPU default. E = 1 pass over (batch + memory) per incoming batch, 1 MC sample,
  and lr 1e-3 instead of the paper's 1e-4 because it trains 100x fewer steps than the paper's E=100.
  NLL with K = 100 importance samples on up to 500 test images per task; OCM's expansion
  criterion R with 10 importance samples per component instead of 1000 (R is compared with its
  previous value, so the bound's looseness largely cancels; 1000 would dominate the run time).
  FID with the classifier features and 1,000 samples. CN-DPM sleeps when its STM holds 500, for
  2,000 steps (with the authors' 1,000 and 12,000, harness 0.6 left most of `mini` in the STM: 2
  experts, 238 s). LIMix's task-free form gates a buffer of 256 in smoke (2,000 by default).
- paper: the paper's schedule (E = 100, 50 MC samples, Adam lr 1e-4, betas (0.5, 0.999)) and
  IWAE-1000 on the full test sets. Days of CPU per cell: a GPU or cluster profile.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from bench.metrics import EXTRACTORS
from bench.planning.validate import SettingError, check_value, field_bounds, field_types, parse_setting
from methods.core.labels import canonical_text, make_label, parse_label
from methods.core.settings import setting
from streams.registry import UnknownNameError


@dataclass(frozen=True)
class Profile:
    name: str
    epochs: int = setting(min=1)     # E: passes over (incoming batch + memory) per incoming batch
    mc_samples: int = setting(min=1)   # Monte-Carlo samples in the training ELBO
    lr: float = setting(above=0)     # Adam
    betas: tuple[float, float] = setting(min=0.0, below=1.0)   # Adam's, each in [0, 1)
    batch_size: int = setting(min=1)   # online batch size = training minibatch size
    task_epochs: int = setting(min=1)  # methods given whole tasks (joint, LGM): passes per task
    eval_k: int = setting(min=1)     # importance samples of the IWAE NLL estimate
    eval_test_per_task: int | None = setting(min=1)   # test images per task scored (None: all)
    max_train_per_task: int | None = setting(min=1)   # truncate each task's training data (None: all)
    fid_features: str | None = setting(None, choices=lambda: (*EXTRACTORS, None))   # None: no FID
    fid_samples: int = setting(1000, min=2)   # generated samples per FID (the same for every method)
    sample_grids: bool = True        # PNG grids of samples and reconstructions per task segment
    steps_per_batch: int | None = setting(None, min=1)   # None: the paper's schedule, `epochs` passes over (batch +
                                     # memory); N: matched compute, N minibatches per incoming batch
                                     # for every method, drawn from what it trains on
    methods: dict = field(default_factory=dict)   # per-method config overrides

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


PROFILES: dict[str, Profile] = {
    p.name: p
    for p in (
        Profile("smoke", epochs=1, mc_samples=1, lr=1e-3, betas=(0.5, 0.999), batch_size=64,
                task_epochs=1, eval_k=16, eval_test_per_task=64, max_train_per_task=256,
                fid_features=None, sample_grids=False,
                methods={"reservoir": {"budget": 256}, "first-k": {"budget": 256}, "ocm": {"stm_capacity": 128},
                         "ocm-iw50": {"stm_capacity": 128, "loss_samples": 5},
                         "ocm-dynamic": {"stm_capacity": 128, "expansion_k": 8, "lambda2": 2.0},
                         "cndpm": {"stm_capacity": 256, "sleep_steps": 100},
                         "limix": {"gate_samples": 256, "threshold": 30.0},
                         "limix-taskfree": {"buffer_size": 256, "gate_samples": 256, "threshold": 30.0}}),
        Profile("quick", epochs=1, mc_samples=1, lr=1e-3, betas=(0.5, 0.999), batch_size=64,
                task_epochs=10, eval_k=100, eval_test_per_task=500, max_train_per_task=None,
                fid_features="classifier", fid_samples=1000,
                methods={"ocm-dynamic": {"expansion_k": 10},
                         "cndpm": {"stm_capacity": 500, "sleep_steps": 2000}}),
        Profile("paper", epochs=100, mc_samples=50, lr=1e-4, betas=(0.5, 0.999), batch_size=64,
                task_epochs=100, eval_k=1000, eval_test_per_task=None, max_train_per_task=None,
                fid_features="classifier", fid_samples=10000),
    )
}

_SETTABLE = {f.name: f for f in dataclasses.fields(Profile) if f.name not in ("name", "methods")}
PROFILE_TYPES = field_types(Profile)
PROFILE_BOUNDS = field_bounds(Profile)


def method_option(key: str, method: str, option: str):
    """The method's spec, the annotated type of its `option` and its bounds (unknown names list
    the valid ones)."""
    from methods import get_method

    spec = get_method(method)
    types = field_types(spec.config_class)
    if option not in types:
        raise UnknownNameError(f"method '{method}' has no setting '{option}' ({key}); valid: "
                               f"{', '.join(types) or 'none'}" + close_hint(option, types))
    return spec, types[option], field_bounds(spec.config_class)[option]


def resolve_profile(name: str, settings: list[str] | None = None) -> Profile:
    """Profile `name` with `key=value` overrides applied.

    `epochs=2` sets a profile field; `reservoir.budget=500` a method setting; tuples are written
    `betas=0.9:0.999`. An overridden profile is named e.g. `quick[epochs=2]`, so records from it
    are never mixed with the plain profile's."""
    if name not in PROFILES:
        raise UnknownNameError(f"unknown profile '{name}'; valid profiles: {', '.join(PROFILES)}"
                               + close_hint(name, PROFILES))
    profile = PROFILES[name]
    if not settings:
        return profile
    changes, methods, given = {}, {k: dict(v) for k, v in profile.methods.items()}, {}
    for item in settings:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ValueError(f"setting '{item}' is not of the form key=value")
        if key in given:
            raise SettingError(f"setting '{key}' is given twice ({key}={given[key]} and {item}): give it once")
        if "." in key:
            method, _, option = key.partition(".")
            _, hint, bounds = method_option(key, method, option)
            methods.setdefault(method, {})[option] = parsed = parse_setting(key, value, hint, bounds)
        elif key in _SETTABLE:
            bounds = PROFILE_BOUNDS[key]
            changes[key] = parsed = parse_setting(key, value, PROFILE_TYPES[key], bounds)
        else:
            raise UnknownNameError(
                f"unknown profile setting '{key}'; valid: {', '.join(_SETTABLE)} or METHOD.OPTION"
                + close_hint(key, _SETTABLE))
        check_value(key, parsed, bounds)
        given[key] = canonical_text(parsed)   # the label: one spelling per value, keys sorted
    label = make_label(name, dict(sorted(given.items())))
    return dataclasses.replace(profile, name=label, methods=methods, **changes)


def parse_method_settings(spec, settings: dict[str, str]) -> dict:
    """A method variant's own settings ('budget' -> '500') typed by its config's annotations."""
    out = {}
    for key, value in settings.items():
        _, hint, bounds = method_option(f"{spec.name}[{key}=...]", spec.name, key)
        out[key] = parse_setting(f"{spec.name}.{key}", value, hint, bounds)
        check_value(f"{spec.name}.{key}", out[key], bounds)
    return out


def close_hint(name: str, valid) -> str:
    """"; did you mean 'epochs'?" for a near miss among `valid`, else ''."""
    import difflib

    close = difflib.get_close_matches(name, list(valid), n=1, cutoff=0.75)
    return f"; did you mean '{close[0]}'?" if close else ""


def split_label(label: str) -> tuple[str, dict[str, str]]:
    """'quick[epochs=3,lr=0.0001]' -> ('quick', {'epochs': '3', 'lr': '0.0001'}): the inverse of
    the label `resolve_profile` gives, for reports that lay records out against a setting."""
    return parse_label(label)

