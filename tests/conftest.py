import os
import sys
import warnings

import pytest

import bench  # noqa: F401  (first: pins the CPU kernels before torch runs an operation)

# isort: split
import torch

warnings.filterwarnings("ignore", message="no QP solver found")
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)
    yield


@pytest.fixture
def registry_guard(monkeypatch):
    """Leave the registry, sys.modules and $OCM_BENCH_IMPORTS as they were (other tests iterate
    over every registered method)."""
    from methods import METHODS
    from methods.core import user_methods

    environment_before = os.environ.get(user_methods.ENV_VAR)   # delenv of an absent variable records
    monkeypatch.delenv(user_methods.ENV_VAR, raising=False)      # nothing to undo: restored below
    methods_before, modules_before = dict(METHODS), set(sys.modules)
    yield
    if environment_before is None:
        os.environ.pop(user_methods.ENV_VAR, None)
    else:
        os.environ[user_methods.ENV_VAR] = environment_before
    for name in set(METHODS) - set(methods_before):
        del METHODS[name]
    METHODS.update(methods_before)
    for name in set(sys.modules) - modules_before:
        if name.startswith(user_methods.FILE_PACKAGE + ".") or name.startswith("tmp_ocm_methods"):
            del sys.modules[name]
