import warnings

import pytest

import bench  # noqa: F401  (first: pins the CPU kernels before torch runs an operation)
import torch  # noqa: E402

warnings.filterwarnings("ignore", message="no QP solver found")
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)
    yield
