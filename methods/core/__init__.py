"""The plugin API every method is written against: the registry, the base plugin, the shared
strategy and the helpers methods share. A method module imports from here.

The registry and settings are plain Python; the base plugin and the helpers (torch, Avalanche)
are imported when first named (`from methods.core import GenerativePlugin`), so that the
registry can be read without them."""
from methods.core.registry import METHODS, PRESETS, MethodSpec, get_method, register_method, register_preset
from methods.core.settings import setting

__all__ = ["GenerativePlugin", "METHODS", "PRESETS", "MethodSpec", "register_preset", "experience_images",
           "extend_minibatch", "frozen_copy", "get_method", "refresh_optimizer", "register_method", "setting"]

_LAZY = {"GenerativePlugin": "methods.core.plugin", "experience_images": "methods.core.helpers",
         "extend_minibatch": "methods.core.helpers", "frozen_copy": "methods.core.helpers",
         "refresh_optimizer": "methods.core.helpers"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'methods.core' has no attribute '{name}'")
