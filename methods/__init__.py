"""Methods: one module per method, each an Avalanche plugin on the shared `GenerativeStrategy`.

Importing this package registers every method; the import order below is the registry order
(`--methods all`, `--list`): references first, then OCM, then the other baselines."""
# isort: off
import streams  # noqa: F401  (first: it silences a third-party import warning before Avalanche loads)
from methods import finetune, first_k, reservoir, joint  # noqa: F401  (registration side effects)
from methods import ocm  # noqa: F401
from methods import lgm, curl  # noqa: F401
# isort: on
from methods.core.registry import METHODS, get_method, register_method  # noqa: F401
