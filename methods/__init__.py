"""Methods: one module per method, each an Avalanche plugin on the shared `GenerativeStrategy`.

Importing this package registers every method (the registry order is the table order)."""
from methods import curl, finetune, joint, lgm, ocm, reservoir  # noqa: F401  (registration side effects)
from methods.registry import METHODS, get_method, register_method  # noqa: F401
