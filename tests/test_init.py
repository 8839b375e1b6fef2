"""Initialisers: bounds and moments as torch.nn.init defines them, and seeding."""

import math

import numpy as np
import pytest
from conftest import torch_or_skip

from tuilab.engine.nn.model import INITIALISERS, MLP, Layout, activation_gain, init_params

FAN_IN, FAN_OUT = 400, 300


def weights(scheme, activation="relu", bias="zeros", seed=0, dtype=np.float64):
    layout = Layout.of([FAN_IN, FAN_OUT])
    theta = init_params(layout, [activation], scheme, bias, seed, dtype)
    return layout.layer(theta, 0)


@pytest.mark.parametrize("scheme,activation,expected_std,bound", [
    ("xavier_normal", "sigmoid", math.sqrt(2 / (FAN_IN + FAN_OUT)), None),
    ("xavier_uniform", "sigmoid", None, math.sqrt(6 / (FAN_IN + FAN_OUT))),
    ("kaiming_normal", "relu", math.sqrt(2) / math.sqrt(FAN_IN), None),
    ("kaiming_normal", "tanh", (5 / 3) / math.sqrt(FAN_IN), None),
    ("kaiming_uniform", "relu", None, math.sqrt(2) * math.sqrt(3 / FAN_IN)),
    ("kaiming_uniform", "leaky_relu", None, math.sqrt(2 / (1 + 0.01**2)) * math.sqrt(3 / FAN_IN)),
    ("torch_default", "relu", None, 1 / math.sqrt(FAN_IN)),
    ("uniform", "relu", None, 0.5),
    ("normal", "relu", 1.0, None),
])
def test_weight_distribution(scheme, activation, expected_std, bound):
    W, b = weights(scheme, activation)
    n = W.size
    assert abs(W.mean()) < 5 * W.std() / math.sqrt(n)  # mean 0 within 5 standard errors
    if bound is not None:
        assert W.min() >= -bound and W.max() <= bound
        assert W.max() > 0.99 * bound and W.min() < -0.99 * bound  # fills the interval
        expected_std = bound / math.sqrt(3)
    # the sample std of n normal/uniform draws is within ~3% here (n = 120k)
    assert W.std() == pytest.approx(expected_std, rel=0.02)
    assert np.all(b == 0)


def test_uniform_positive():
    W, _ = weights("uniform_positive")
    assert W.min() >= 0 and W.max() <= 1
    assert W.mean() == pytest.approx(0.5, abs=0.01)


def test_scheme_bias_uses_the_scheme():
    _, b = weights("torch_default", bias="scheme")
    bound = 1 / math.sqrt(FAN_IN)
    assert np.all(np.abs(b) <= bound) and b.std() > 0.3 * bound


def test_same_seed_same_bits_and_dtypes_agree():
    net = MLP([20, 10, 5], "relu", dtype="float32")
    a = net.init("kaiming_uniform", seed=42)
    b = net.init("kaiming_uniform", seed=42)
    c = net.init("kaiming_uniform", seed=43)
    assert a.dtype == np.float32 and a.tobytes() == b.tobytes()
    assert not np.array_equal(a, c)
    d = MLP([20, 10, 5], "relu", dtype="float64").init("kaiming_uniform", seed=42)
    np.testing.assert_array_equal(a, d.astype(np.float32))


def test_gains_follow_torch():
    torch = torch_or_skip()
    for name in ("sigmoid", "tanh", "relu"):
        assert activation_gain(name) == pytest.approx(torch.nn.init.calculate_gain(name))
    assert activation_gain("leaky_relu") == pytest.approx(
        torch.nn.init.calculate_gain("leaky_relu", 0.01))


def test_every_initialiser_is_listed():
    assert set(INITIALISERS) == {"xavier_normal", "xavier_uniform", "kaiming_normal",
                                 "kaiming_uniform", "torch_default", "uniform",
                                 "uniform_positive", "normal"}
