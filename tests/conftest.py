import warnings

import pytest
import torch

warnings.filterwarnings("ignore", message="no QP solver found")
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)
    yield
