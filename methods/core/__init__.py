"""The plugin API every method is written against: the registry, the base plugin, the shared
strategy and the helpers methods share. A method module imports from here."""
from methods.core.helpers import experience_images, extend_minibatch, frozen_copy, refresh_optimizer
from methods.core.plugin import GenerativePlugin
from methods.core.registry import METHODS, MethodSpec, get_method, register_method

__all__ = ["GenerativePlugin", "METHODS", "MethodSpec", "experience_images", "extend_minibatch",
           "frozen_copy", "get_method", "refresh_optimizer", "register_method"]
