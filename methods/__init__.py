"""Methods: one module per method, each an Avalanche plugin on the shared `GenerativeStrategy`.

Importing this package registers every method; the import order below is the registry order
(`--methods all`, `--list`): references first, then OCM, then the other baselines.

A method defined elsewhere needs only this package's API (examples/my_method.py):

    from methods import GenerativePlugin, register_method

and is imported by `bench.run --import MODULE` or an installed package's `ocm_bench.methods`
entry point (methods/core/user_methods.py)."""
# isort: off
import streams  # noqa: F401  (first: it silences a third-party import warning before Avalanche loads)
from methods import finetune, first_k, reservoir, joint  # noqa: F401  (registration side effects)
from methods import ocm  # noqa: F401
from methods import lgm, curl, cndpm, limix  # noqa: F401
# isort: on
from methods.core.plugin import GenerativePlugin
from methods.core.registry import (METHODS, PRESETS, MethodRegistrationError, get_method, paper_name,
                                   register_method, register_preset)

__all__ = ["GenerativePlugin", "METHODS", "PRESETS", "MethodRegistrationError", "get_method", "register_method",
           "paper_name", "register_preset"]
