import os

import numpy as np
import pytest


def torch_or_skip():
    """PyTorch, the oracle. Where CI (or TUILAB_REQUIRE_TORCH=1) is set, a missing torch
    fails the test instead of skipping it, so the oracle cannot silently drop out."""
    if os.environ.get("TUILAB_REQUIRE_TORCH") == "1" or os.environ.get("CI", "") in ("true", "1"):
        import torch  # noqa: F401  (an ImportError here fails the test)

        return torch
    return pytest.importorskip("torch")


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
