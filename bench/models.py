"""A finished cell's trained model, kept beside its record and loaded without training.

`bench.run --keep-models` saves each cell's final model to DIR/models/<record name>.pt: its
weights (`state_dict`) and what rebuilds it (the method, its resolved settings, the profile, the
stream's image shape, the number of mixture components), nothing else, so that it loads with
`torch.load(weights_only=True)`: a model file from elsewhere cannot run code. `load_model(record)`
rebuilds the method's model and loads the weights (a notebook's entry point);
`python -m bench.sample RECORD` draws from it.

A model that grew (a mixture) is rebuilt by the method's own model and grown with its
`add_component()` to the recorded number of components; a model that grows some other way says
so instead of loading wrong weights (load_state_dict is strict).
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from bench.evaluation.kept_models import MODEL_FORMAT, ModelKeeper  # noqa: F401  (the saving side)


class ModelFileError(ValueError):
    """No kept model for a record, or one that cannot be rebuilt: the message says what to do."""


def model_file(record, results_dir: str | Path | None = None) -> Path:
    """Where a record's kept model is: DIR/models/<record name>.pt, DIR being the record file's
    results directory (a path to a record JSON) or `results_dir`."""
    if isinstance(record, (str, Path)):
        path = Path(record)
        return path.parent.parent / "models" / f"{path.stem}.pt"
    if results_dir is None:
        raise ModelFileError("give the record's results directory (load_model(record, results_dir=...))")
    from bench.execution.store import record_stem_of

    return Path(results_dir) / "models" / f"{record_stem_of(record)}.pt"


def load_model(record, results_dir: str | Path | None = None, device: str = "cpu"):
    """The trained model of a finished cell kept with `--keep-models`: `record` is the path of
    its record JSON (or a Record with `results_dir`). Returns the method's model, in eval mode,
    with `image_shape` (C, H, W) set."""
    import torch

    path = model_file(record, results_dir)
    if not path.is_file():
        raise ModelFileError(f"no kept model at {path}: run the cell with bench.run --keep-models "
                             "(a finished cell is not rerun: remove its record, or use a new --out)")
    saved = torch.load(path, map_location=device, weights_only=True)
    if saved.get("format") != MODEL_FORMAT:
        raise ModelFileError(f"{path}: model format {saved.get('format')}, this harness reads {MODEL_FORMAT}")
    from bench.planning.profiles import Profile
    from methods import get_method

    spec = get_method(saved["method"])
    config_values = json.loads(saved["method_config"])
    config = spec.config_class(**{f.name: config_values[f.name] for f in dataclasses.fields(spec.config_class)
                                  if f.name in config_values})
    profile_values = json.loads(saved["profile"])
    profile_values["betas"] = tuple(profile_values["betas"])
    plugin = spec.plugin_class(config, seed=saved["seed"])
    plugin.image_shape = tuple(saved["image_shape"])
    model = plugin.build_model(Profile(**profile_values))
    while getattr(model, "num_components", 1) < saved["components"]:
        grow = getattr(model, "add_component", None)
        try:
            grow()
        except TypeError as err:   # None, or an add_component that needs arguments
            raise ModelFileError(f"{path}: {saved['method']}'s model grows in a way the generic rebuild does not "
                                 f"know ({err}); load it in the method's own code") from err
    try:
        model.load_state_dict(saved["state_dict"])
    except RuntimeError as err:
        raise ModelFileError(f"{path}: the rebuilt {saved['method']} model does not take these weights: {err}") from err
    model.image_shape = tuple(saved["image_shape"])   # the stream's C, H, W: how samples are drawn
    return model.to(device).eval()
