"""Methods: one module per method, each an Avalanche plugin on the shared `GenerativeStrategy`.

Importing this package registers every built-in method without importing any of them (or torch):
methods/catalog.py declares each one's name, settings, description and plugin class, in registry
order (`--methods all`, `--list`): references first, then OCM, then the other baselines. A
method's module is imported when its plugin class is first needed (`get_method(name).plugin_class`).

A method defined elsewhere needs only this package's API (examples/my_method.py; the contract is
docs/architecture.md#writing-a-method):

    from methods import GenerativePlugin, register_method

and is imported by `bench.run --import MODULE` or an installed package's `ocm_bench.methods`
entry point (methods/core/user_methods.py)."""
import streams  # noqa: F401  (first: it silences a third-party import warning before Avalanche loads)
from methods import catalog  # noqa: F401  (declares the built-in methods and presets)
from methods.core.labels import base_name
from methods.core.registry import (
    METHODS,
    PRESETS,
    MethodRegistrationError,
    Reporting,
    get_method,
    is_upper_bound,
    paper_name,
    register_method,
    register_preset,
)
from methods.core.settings import setting

__all__ = ["GenerativePlugin", "METHODS", "PRESETS", "MethodRegistrationError", "Reporting", "base_name", "get_method",
           "is_upper_bound", "register_method", "paper_name", "register_preset", "setting"]


def __getattr__(name: str):
    """`GenerativePlugin` (and with it torch and Avalanche) is imported on first use."""
    if name == "GenerativePlugin":
        from methods.core.plugin import GenerativePlugin

        return GenerativePlugin
    raise AttributeError(f"module 'methods' has no attribute '{name}'")
