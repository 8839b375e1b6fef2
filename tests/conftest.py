import os

import numpy as np
import pytest


def torch_or_skip():
    """PyTorch, the oracle; CI sets TUILAB_REQUIRE_TORCH=1 so that a missing torch fails, not skips."""
    if os.environ.get("TUILAB_REQUIRE_TORCH") == "1":
        import torch  # noqa: F401  (an ImportError here fails the test)

        return torch
    return pytest.importorskip("torch")


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
