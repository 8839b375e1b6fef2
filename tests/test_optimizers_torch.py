"""Every optimizer torch.optim has, against torch.optim over 250 steps in float64.

The gradient is a fixed function of the parameters and the step,
g_t(theta) = c theta + 0.3 sin(theta) - b + noise_t, evaluated by the same NumPy code for
both sides, so the two trajectories see the same gradient sequence as long as they agree.
It is strongly convex (rounding differences shrink rather than grow), and the fixed
noise, like a minibatch's, keeps |g| away from 0: near a zero gradient, Adam-like
updates g / sqrt(v) magnify the cancellation in g and any two correct implementations
drift apart.
"""

import numpy as np
import pytest
from conftest import torch_or_skip

from tuilab.engine.nn.optim import Optimizer

STEPS = 250
N = 17

# (our name, our hyperparameters, torch class name, torch kwargs)
CASES = [
    ("sgd", dict(lr=0.05), "SGD", dict(lr=0.05)),
    ("sgd", dict(lr=0.05, weight_decay=0.1), "SGD", dict(lr=0.05, weight_decay=0.1)),
    ("momentum", dict(lr=0.02), "SGD", dict(lr=0.02, momentum=0.9)),
    ("sgd", dict(lr=0.02, momentum=0.8, dampening=0.3, weight_decay=0.01), "SGD",
     dict(lr=0.02, momentum=0.8, dampening=0.3, weight_decay=0.01)),
    ("nesterov", dict(lr=0.02), "SGD", dict(lr=0.02, momentum=0.9, nesterov=True)),
    ("nesterov", dict(lr=0.03, momentum=0.8, weight_decay=0.05), "SGD",
     dict(lr=0.03, momentum=0.8, nesterov=True, weight_decay=0.05)),
    ("adagrad", dict(lr=0.1), "Adagrad", dict(lr=0.1)),
    ("adagrad", dict(lr=0.1, lr_decay=0.01, weight_decay=0.02, initial_accumulator_value=0.5,
                     eps=1e-6), "Adagrad",
     dict(lr=0.1, lr_decay=0.01, weight_decay=0.02, initial_accumulator_value=0.5, eps=1e-6)),
    ("rmsprop", dict(lr=0.01), "RMSprop", dict(lr=0.01)),
    ("rmsprop", dict(lr=0.01, centered=True), "RMSprop", dict(lr=0.01, centered=True)),
    ("rmsprop", dict(lr=0.005, momentum=0.9, weight_decay=0.01), "RMSprop",
     dict(lr=0.005, momentum=0.9, weight_decay=0.01)),
    ("rmsprop", dict(lr=0.005, alpha=0.9, momentum=0.5, centered=True, eps=1e-6), "RMSprop",
     dict(lr=0.005, alpha=0.9, momentum=0.5, centered=True, eps=1e-6)),
    ("adadelta", dict(), "Adadelta", dict()),
    ("adadelta", dict(lr=0.5, rho=0.8, eps=1e-5, weight_decay=0.1), "Adadelta",
     dict(lr=0.5, rho=0.8, eps=1e-5, weight_decay=0.1)),
    ("adam", dict(lr=0.01), "Adam", dict(lr=0.01)),
    ("adam", dict(lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.05), "Adam",
     dict(lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.05)),
    ("adam", dict(lr=0.01, amsgrad=True), "Adam", dict(lr=0.01, amsgrad=True)),
    ("adam", dict(lr=0.01, betas=(0.3, 0.9)), "Adam", dict(lr=0.01, betas=(0.3, 0.9))),
    ("amsgrad", dict(lr=0.02, weight_decay=0.01), "Adam",
     dict(lr=0.02, amsgrad=True, weight_decay=0.01)),
    ("adamw", dict(lr=0.01), "AdamW", dict(lr=0.01)),
    ("adamw", dict(lr=0.01, weight_decay=0.1, amsgrad=True), "AdamW",
     dict(lr=0.01, weight_decay=0.1, amsgrad=True)),
    ("nadam", dict(), "NAdam", dict()),
    ("nadam", dict(lr=0.01, weight_decay=0.05, momentum_decay=0.01), "NAdam",
     dict(lr=0.01, weight_decay=0.05, momentum_decay=0.01)),
    ("nadam", dict(lr=0.01, weight_decay=0.05, decoupled_weight_decay=True), "NAdam",
     dict(lr=0.01, weight_decay=0.05, decoupled_weight_decay=True)),
    ("radam", dict(lr=0.01), "RAdam", dict(lr=0.01)),
    ("radam", dict(lr=0.01, weight_decay=0.05), "RAdam", dict(lr=0.01, weight_decay=0.05)),
    ("radam", dict(lr=0.01, weight_decay=0.05, decoupled_weight_decay=True, betas=(0.9, 0.99)),
     "RAdam", dict(lr=0.01, weight_decay=0.05, decoupled_weight_decay=True, betas=(0.9, 0.99))),
    ("adamax", dict(), "Adamax", dict()),
    ("adamax", dict(lr=0.01, betas=(0.8, 0.95), weight_decay=0.05), "Adamax",
     dict(lr=0.01, betas=(0.8, 0.95), weight_decay=0.05)),
    ("rprop", dict(), "Rprop", dict()),
    ("rprop", dict(lr=0.05, etas=(0.3, 1.5), step_sizes=(1e-3, 0.2)), "Rprop",
     dict(lr=0.05, etas=(0.3, 1.5), step_sizes=(1e-3, 0.2))),
    ("asgd", dict(), "ASGD", dict()),
    ("asgd", dict(lr=0.05, t0=40, weight_decay=0.05), "ASGD", dict(lr=0.05, t0=40, weight_decay=0.05)),
    ("asgd", dict(lr=0.1, lambd=0.05, alpha=1.0, t0=0), "ASGD", dict(lr=0.1, lambd=0.05, alpha=1.0, t0=0)),
    # a vector: Adafactor's unfactored second moment (matrices: test_optimizers_network_torch)
    ("adafactor", dict(), "Adafactor", dict()),
    ("adafactor", dict(lr=0.05, weight_decay=0.1, d=1.5), "Adafactor", dict(lr=0.05, weight_decay=0.1, d=1.5)),
    ("adafactor", dict(eps=(1e-2, 1e-2), beta2_decay=-0.3), "Adafactor", dict(eps=(1e-2, 1e-2), beta2_decay=-0.3)),
]


def gradient(theta, c, b, noise):
    return c * theta + 0.3 * np.sin(theta) - b + noise


@pytest.mark.parametrize("name,ours,torch_name,theirs", CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_trajectory_matches_torch(name, ours, torch_name, theirs):
    torch = torch_or_skip()
    torch.set_default_dtype(torch.float64)  # torch's scalar state (NAdam's mu product) too
    rng = np.random.default_rng(7)
    c = rng.uniform(1.0, 3.0, N)
    b = rng.normal(size=N)
    start = rng.normal(size=N) * 2
    noise = rng.normal(size=(STEPS, N))

    theta = start.copy()
    opt = Optimizer(name, N, np.float64, **ours)
    p = torch.nn.Parameter(torch.tensor(start.copy(), dtype=torch.float64))
    topt = getattr(torch.optim, torch_name)([p], **theirs)
    worst = 0.0
    for step in range(STEPS):
        opt.step(theta, gradient(theta, c, b, noise[step]))
        p.grad = torch.from_numpy(gradient(p.detach().numpy().copy(), c, b, noise[step]))
        topt.step()
        ref = p.detach().numpy()
        err = np.max(np.abs(theta - ref)) / np.max(np.abs(ref))
        worst = max(worst, err)
        assert err < 1e-10, f"step {step}: relative difference {err:.3g}"
    # the optimizer really moved (a frozen theta would also 'agree' with a frozen torch)
    assert np.max(np.abs(theta - start)) > 1e-3


def test_float32_adam_tracks_torch_float32():
    torch = torch_or_skip()
    torch.set_default_dtype(torch.float32)
    rng = np.random.default_rng(3)
    c = rng.uniform(1.0, 3.0, N)
    b = rng.normal(size=N)
    start = rng.normal(size=N).astype(np.float32)
    theta = start.copy()
    opt = Optimizer("adam", N, np.float32, lr=0.01)
    p = torch.nn.Parameter(torch.tensor(start.copy()))
    topt = torch.optim.Adam([p], lr=0.01)
    for _ in range(100):
        opt.step(theta, gradient(theta, c, b, 0.0).astype(np.float32))
        p.grad = torch.from_numpy(gradient(p.detach().numpy().copy(), c, b, 0.0).astype(np.float32))
        topt.step()
    assert theta.dtype == np.float32
    np.testing.assert_allclose(theta, p.detach().numpy(), rtol=1e-4, atol=1e-5)


# maximize (torch negates the gradient before anything else, weight decay included): each side is fed
# the negated gradient, so both descend and stay comparable over every step
MAXIMIZE = [
    ("sgd", dict(lr=0.02, momentum=0.8, weight_decay=0.01), "SGD", dict(lr=0.02, momentum=0.8, weight_decay=0.01)),
    ("nesterov", dict(lr=0.02), "SGD", dict(lr=0.02, momentum=0.9, nesterov=True)),
    ("adagrad", dict(lr=0.1, weight_decay=0.02), "Adagrad", dict(lr=0.1, weight_decay=0.02)),
    ("rmsprop", dict(lr=0.005, momentum=0.5, centered=True), "RMSprop", dict(lr=0.005, momentum=0.5, centered=True)),
    ("adadelta", dict(weight_decay=0.1), "Adadelta", dict(weight_decay=0.1)),
    ("adam", dict(lr=0.01, weight_decay=0.05, amsgrad=True), "Adam", dict(lr=0.01, weight_decay=0.05, amsgrad=True)),
    ("adamw", dict(lr=0.01, weight_decay=0.1), "AdamW", dict(lr=0.01, weight_decay=0.1)),
    ("nadam", dict(lr=0.01, weight_decay=0.05), "NAdam", dict(lr=0.01, weight_decay=0.05)),
    ("radam", dict(lr=0.01, weight_decay=0.05), "RAdam", dict(lr=0.01, weight_decay=0.05)),
    ("adamax", dict(lr=0.01, weight_decay=0.05), "Adamax", dict(lr=0.01, weight_decay=0.05)),
    ("rprop", dict(lr=0.05), "Rprop", dict(lr=0.05)),
    ("asgd", dict(lr=0.05, t0=40, weight_decay=0.05), "ASGD", dict(lr=0.05, t0=40, weight_decay=0.05)),
    ("adafactor", dict(weight_decay=0.05), "Adafactor", dict(weight_decay=0.05)),
]


@pytest.mark.parametrize("name,ours,torch_name,theirs", MAXIMIZE, ids=[c[0] for c in MAXIMIZE])
def test_maximize_matches_torch_and_is_descent_on_the_negated_gradient(name, ours, torch_name, theirs):
    torch = torch_or_skip()
    torch.set_default_dtype(torch.float64)
    rng = np.random.default_rng(11)
    c, b = rng.uniform(1.0, 3.0, N), rng.normal(size=N)
    start = rng.normal(size=N) * 2
    noise = rng.normal(size=(STEPS, N))
    up, down = start.copy(), start.copy()
    opt_up = Optimizer(name, N, np.float64, maximize=True, **ours)
    opt_down = Optimizer(name, N, np.float64, **ours)
    p = torch.nn.Parameter(torch.tensor(start.copy(), dtype=torch.float64))
    topt = getattr(torch.optim, torch_name)([p], maximize=True, **theirs)
    for step in range(STEPS):
        g = -gradient(up, c, b, noise[step])
        given = g.copy()
        opt_up.step(up, g)
        assert np.array_equal(g, given)  # the caller's gradient is left as it was
        opt_down.step(down, gradient(down, c, b, noise[step]))
        p.grad = torch.from_numpy(-gradient(p.detach().numpy().copy(), c, b, noise[step]))
        topt.step()
        ref = p.detach().numpy()
        err = np.max(np.abs(up - ref)) / np.max(np.abs(ref))
        assert err < 1e-10, f"step {step}: relative difference {err:.3g}"
        assert np.array_equal(up, down), f"step {step}: maximize on -g is not descent on g"
    assert np.max(np.abs(up - start)) > 1e-3


@pytest.mark.parametrize("hyper", [dict(lr=0.05, t0=40), dict(lr=0.1, lambd=0.05, alpha=1.0, t0=0, weight_decay=0.02)])
def test_asgd_average_matches_torch(hyper):
    """ASGD's second trajectory, the running average ax, follows torch's state['ax'] (and moves apart from
    the iterate once averaging starts at t0)."""
    torch = torch_or_skip()
    torch.set_default_dtype(torch.float64)  # torch keeps eta and mu as tensors of the default dtype
    rng = np.random.default_rng(5)
    c, b = rng.uniform(1.0, 3.0, N), rng.normal(size=N)
    start = rng.normal(size=N) * 2
    noise = rng.normal(size=(STEPS, N))
    theta = start.copy()
    opt = Optimizer("asgd", N, np.float64, **hyper)
    p = torch.nn.Parameter(torch.tensor(start.copy()))
    topt = torch.optim.ASGD([p], **hyper)
    for step in range(STEPS):
        opt.step(theta, gradient(theta, c, b, noise[step]))
        p.grad = torch.from_numpy(gradient(p.detach().numpy().copy(), c, b, noise[step]))
        topt.step()
        ref = topt.state[p]["ax"].numpy()
        ax = opt.state[opt.spec.slots.index("ax")]
        err = np.max(np.abs(ax - ref)) / np.max(np.abs(ref))
        assert err < 1e-10, f"step {step}: relative difference {err:.3g}"
    assert np.max(np.abs(ax - theta)) > 1e-3  # the average is not the iterate
