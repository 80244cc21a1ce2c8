"""The plugin API every method is written against: the registry, the base plugin, the shared
strategy and the helpers methods share. A method module imports from here."""
from methods.core.helpers import experience_images, extend_minibatch, frozen_copy, refresh_optimizer
from methods.core.plugin import GenerativePlugin
from methods.core.registry import METHODS, PRESETS, MethodSpec, get_method, register_method, register_preset

__all__ = ["GenerativePlugin", "METHODS", "PRESETS", "MethodSpec", "register_preset", "experience_images", "extend_minibatch",
           "frozen_copy", "get_method", "refresh_optimizer", "register_method"]
