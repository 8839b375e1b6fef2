"""Backward pass against float64 central finite differences of a NumPy forward pass."""

import numpy as np
import pytest
from naive import mlp_loss

from tuilab.engine.nn.model import HIDDEN_ACTIVATIONS, MLP

pytestmark = pytest.mark.blas  # gradients against finite differences through BLAS matrix products

HEADS = [("softmax", "cross_entropy"), ("softmax", "squared_error"),
         ("sigmoid", "squared_error"), ("identity", "squared_error"), ("tanh", "squared_error")]


def _targets(rng, n, k, output):
    if output == "softmax":
        return np.eye(k)[rng.integers(0, k, n)]
    return rng.uniform(0.1, 0.9, (n, k))


def _check_fd(net, theta, X, Y, rng, n_coords=25, h=1e-6):
    value, grad = net.loss_and_grad(theta, X, Y)
    ref = mlp_loss(theta, X, Y, net.layout, net.activations, net.loss_name)
    assert value == pytest.approx(ref, rel=1e-12, abs=1e-14)
    idx = rng.choice(theta.size, size=min(n_coords, theta.size), replace=False)
    for i in idx:
        e = np.zeros_like(theta)
        e[i] = h
        fd = (mlp_loss(theta + e, X, Y, net.layout, net.activations, net.loss_name)
              - mlp_loss(theta - e, X, Y, net.layout, net.activations, net.loss_name)) / (2 * h)
        assert grad[i] == pytest.approx(fd, rel=1e-5, abs=1e-8), f"coordinate {i}"


@pytest.mark.parametrize("activation", sorted(HIDDEN_ACTIVATIONS))
@pytest.mark.parametrize("output,loss", HEADS)
def test_shallow_backward_matches_finite_differences(activation, output, loss, rng):
    n_in, hidden, k, n = rng.integers(2, 9), rng.integers(2, 12), rng.integers(2, 6), rng.integers(1, 9)
    net = MLP([int(n_in), int(hidden), int(k)], activation, output, loss, "float64")
    theta = net.init("xavier_normal", "scheme", seed=int(rng.integers(1000)))
    X = rng.normal(size=(int(n), int(n_in)))
    _check_fd(net, theta, X, _targets(rng, int(n), int(k), output), rng)


@pytest.mark.parametrize("activation", ["sigmoid", "relu", "tanh", "gelu", "elu"])
def test_deep_backward_matches_finite_differences(activation, rng):
    sizes = [int(s) for s in rng.integers(2, 8, size=7)]
    net = MLP(sizes, activation, "softmax", "cross_entropy", "float64")
    theta = net.init("kaiming_normal", "scheme", seed=3)
    X = rng.normal(size=(6, sizes[0]))
    _check_fd(net, theta, X, _targets(rng, 6, sizes[-1], "softmax"), rng, n_coords=40)


def test_mixed_activations_per_layer(rng):
    net = MLP([4, 5, 6, 3], ["tanh", "softplus"], "sigmoid", "squared_error", "float64")
    theta = net.init("uniform", "scheme", seed=5)
    X = rng.normal(size=(7, 4))
    _check_fd(net, theta, X, _targets(rng, 7, 3, "sigmoid"), rng)


def test_soft_labels_cross_entropy(rng):
    """Targets that are not one-hot (label smoothing) still get the exact gradient."""
    net = MLP([3, 4, 5], "relu", "softmax", "cross_entropy", "float64")
    theta = net.init("xavier_uniform", "scheme", seed=2)
    Y = rng.dirichlet(np.ones(5), size=6)
    _check_fd(net, theta, rng.normal(size=(6, 3)), Y, rng)


def test_float32_gradient_close_to_float64(rng):
    net64 = MLP([6, 8, 4], "sigmoid", dtype="float64")
    net32 = MLP([6, 8, 4], "sigmoid", dtype="float32")
    X = rng.normal(size=(5, 6))
    Y = _targets(rng, 5, 4, "softmax")
    v64, g64 = net64.loss_and_grad(net64.init(seed=9), X, Y)
    v32, g32 = net32.loss_and_grad(net32.init(seed=9), X.astype(np.float32), Y.astype(np.float32))
    assert g32.dtype == np.float32
    assert v32 == pytest.approx(v64, rel=1e-5)
    np.testing.assert_allclose(g32, g64, rtol=1e-3, atol=1e-5)
