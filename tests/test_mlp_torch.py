"""Forward and backward against PyTorch autograd with the same parameters."""

import numpy as np
import pytest
from conftest import torch_or_skip

from tuilab.engine.nn.model import HIDDEN_ACTIVATIONS, MLP

pytestmark = pytest.mark.blas  # the network's forward and backward against torch's: matrix products through two BLAS


def _torch_loss(torch, net, theta, X, Y):
    F = torch.nn.functional
    acts = {"identity": lambda z: z, "sigmoid": torch.sigmoid, "tanh": torch.tanh,
            "relu": torch.relu, "leaky_relu": F.leaky_relu, "elu": F.elu,
            "softplus": F.softplus, "gelu": F.gelu, "softmax": lambda z: torch.softmax(z, 1)}
    t = torch.tensor(theta, requires_grad=True)
    a = torch.tensor(X)
    L = net.layout
    for l in range(L.n_layers):
        n_in, n_out = int(L.sizes[l]), int(L.sizes[l + 1])
        # the same (out, in) layout as torch's Linear.weight
        weight = t[int(L.w_off[l]):int(L.w_off[l]) + n_in * n_out].reshape(n_out, n_in)
        z = F.linear(a, weight, t[int(L.b_off[l]):int(L.b_off[l]) + n_out])
        a = acts[net.activations[l]](z)
    if net.loss_name == "cross_entropy":
        loss = F.cross_entropy(z, torch.tensor(Y.argmax(1)))
    else:
        loss = 0.5 * F.mse_loss(a, torch.tensor(Y))
    loss.backward()
    return loss.item(), t.grad.numpy(), a.detach().numpy()


@pytest.mark.parametrize("activation", sorted(HIDDEN_ACTIVATIONS))
@pytest.mark.parametrize("output,loss", [("softmax", "cross_entropy"), ("sigmoid", "squared_error"),
                                         ("identity", "squared_error"), ("softmax", "squared_error")])
def test_matches_torch_float64(activation, output, loss, rng):
    torch = torch_or_skip()
    sizes = [int(s) for s in rng.integers(3, 20, size=int(rng.integers(3, 6)))]
    net = MLP(sizes, activation, output, loss, "float64")
    theta = net.init("xavier_normal", "scheme", seed=int(rng.integers(100)))
    n = int(rng.integers(1, 40))
    X = rng.normal(size=(n, sizes[0]))
    Y = (np.eye(sizes[-1])[rng.integers(0, sizes[-1], n)] if output == "softmax"
         else rng.uniform(size=(n, sizes[-1])))
    value, grad = net.loss_and_grad(theta, X, Y)
    t_value, t_grad, t_out = _torch_loss(torch, net, theta, X, Y)
    assert value == pytest.approx(t_value, rel=1e-12)
    np.testing.assert_allclose(grad, t_grad, rtol=1e-9, atol=1e-14)
    np.testing.assert_allclose(net.predict(theta, X), t_out, rtol=1e-12, atol=1e-15)


def test_matches_torch_float32(rng):
    torch = torch_or_skip()
    torch.set_default_dtype(torch.float32)
    net = MLP([784, 30, 10], "sigmoid", dtype="float32")
    theta = net.init(seed=0)
    X = rng.random((64, 784), dtype=np.float32)
    Y = np.eye(10, dtype=np.float32)[rng.integers(0, 10, 64)]
    value, grad = net.loss_and_grad(theta, X, Y)
    t_value, t_grad, _ = _torch_loss(torch, net, theta, X, Y)
    assert value == pytest.approx(t_value, rel=1e-5)
    np.testing.assert_allclose(grad, t_grad, rtol=1e-3, atol=1e-6)
