"""Every torch-named optimizer on a small network, against torch.optim on the network's own tensors.

torch gets theta as the tensors nn.Linear would hold (each W of shape (n_out, n_in), each b), so an
optimizer that works per tensor (Adafactor's factored second moment, Muon's orthogonalised matrix
updates) is checked on the matrices it was made for, through engine.model.Layout.tensor_table.
Both sides take their gradient from our network kernel at their own parameters, on the same minibatch
sequence, so the two trajectories differ only by what the optimizers do.
"""

import numpy as np
import pytest
from conftest import torch_or_skip

from tuilab.engine.nn.model import MLP
from tuilab.engine.nn.optim import Optimizer

pytestmark = pytest.mark.blas  # optimizers on networks against torch.optim: matrix products through two BLAS

STEPS = 120
SIZES = [6, 5, 4, 3]

# (our name, our hyperparameters, torch class name, torch kwargs)
CASES = [
    ("sgd", dict(lr=0.05, weight_decay=0.01), "SGD", dict(lr=0.05, weight_decay=0.01)),
    ("nesterov", dict(lr=0.02), "SGD", dict(lr=0.02, momentum=0.9, nesterov=True)),
    ("adagrad", dict(lr=0.05), "Adagrad", dict(lr=0.05)),
    ("rmsprop", dict(lr=0.005, momentum=0.5, centered=True), "RMSprop", dict(lr=0.005, momentum=0.5, centered=True)),
    ("adadelta", dict(), "Adadelta", dict()),
    ("adam", dict(lr=0.01, amsgrad=True), "Adam", dict(lr=0.01, amsgrad=True)),
    ("adamw", dict(lr=0.01), "AdamW", dict(lr=0.01)),
    ("nadam", dict(lr=0.01), "NAdam", dict(lr=0.01)),
    ("radam", dict(lr=0.01), "RAdam", dict(lr=0.01)),
    ("adamax", dict(lr=0.01), "Adamax", dict(lr=0.01)),
    ("rprop", dict(lr=0.01), "Rprop", dict(lr=0.01)),
    ("asgd", dict(lr=0.05, t0=30), "ASGD", dict(lr=0.05, t0=30)),
    ("adafactor", dict(), "Adafactor", dict()),
    ("adafactor", dict(lr=0.05, weight_decay=0.1), "Adafactor", dict(lr=0.05, weight_decay=0.1)),
    ("adafactor", dict(eps=(1e-3, 1e-2)), "Adafactor", dict(eps=(1e-3, 1e-2))),
    ("adafactor", dict(eps=("none", 0.0), d=2.0, beta2_decay=-0.5), "Adafactor",
     dict(eps=(None, 0.0), d=2.0, beta2_decay=-0.5)),
    ("adafactor", dict(maximize=True, weight_decay=0.05), "Adafactor", dict(maximize=True, weight_decay=0.05)),
]


def torch_tensors(torch, net, theta):
    """theta as the parameters of torch's nn.Linear layers: W (n_out, n_in), b, layer by layer."""
    out = []
    for l in range(net.layout.n_layers):
        W, b = net.layout.layer(theta, l)
        out += [torch.nn.Parameter(torch.tensor(W.copy())), torch.nn.Parameter(torch.tensor(b.copy()))]
    return out


def set_grads(torch, params, net, grad) -> None:
    for p, q in zip(params, torch_tensors(torch, net, grad), strict=True):
        p.grad = q.detach()


def flat(params) -> np.ndarray:
    return np.concatenate([p.detach().numpy().ravel() for p in params])


def race(torch, name, ours, make_torch, steps=STEPS, seed=3, sign=1.0):
    """Train both sides on the same minibatches; the worst relative difference over the steps and the
    distance theta moved. `sign` -1 feeds both sides the negated gradient (for maximize)."""
    torch.set_default_dtype(torch.float64)
    rng = np.random.default_rng(seed)
    net = MLP(SIZES, "tanh", "identity", "squared_error", "float64")
    start = net.init("xavier_normal", "scheme", seed=seed)
    X = rng.normal(size=(64, SIZES[0]))
    Y = rng.normal(size=(64, SIZES[-1]))
    batches = [rng.choice(64, 16, replace=False) for _ in range(steps)]

    theta = start.copy()
    opt = Optimizer(name, net.layout.size, np.float64, layout=net.layout, **ours)
    params = torch_tensors(torch, net, start)
    topt = make_torch(params)
    worst = 0.0
    for step, rows in enumerate(batches):
        _, g = net.loss_and_grad(theta, X[rows], Y[rows])
        opt.step(theta, sign * g)
        _, tg = net.loss_and_grad(flat(params), X[rows], Y[rows])
        set_grads(torch, params, net, sign * tg)
        topt.step()
        ref = flat(params)
        err = np.max(np.abs(theta - ref)) / np.max(np.abs(ref))
        worst = max(worst, err)
        assert err < 1e-10, f"step {step}: relative difference {err:.3g}"
    return worst, float(np.max(np.abs(theta - start)))


@pytest.mark.parametrize("name,ours,torch_name,theirs", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_network_trajectory_matches_torch(name, ours, torch_name, theirs):
    torch = torch_or_skip()
    sign = -1.0 if ours.get("maximize") else 1.0
    worst, moved = race(torch, name, ours, lambda ps: getattr(torch.optim, torch_name)(ps, **theirs), sign=sign)
    assert moved > 1e-3  # it trained (a frozen theta would agree with a frozen torch)


def test_adafactor_factors_matrices_and_not_vectors():
    """A matrix keeps rows + cols second-moment numbers (torch's row_var and col_var), a bias keeps its own
    per-value variance: the state is laid out per tensor, as the table says."""
    torch = torch_or_skip()
    net = MLP(SIZES, "tanh", "identity", "squared_error", "float64")
    opt = Optimizer("adafactor", net.layout.size, np.float64, layout=net.layout)
    theta = net.init(seed=1)
    params = torch_tensors(torch, net, theta)
    topt = torch.optim.Adafactor(params)
    rng = np.random.default_rng(0)
    g = rng.normal(size=net.layout.size)
    opt.step(theta, g)
    set_grads(torch, params, net, g)
    topt.step()
    row_var, col_var = opt.state[opt.spec.slots.index("row_var")], opt.state[opt.spec.slots.index("col_var")]
    for (off, rows, cols), p in zip(net.layout.tensor_table(), params, strict=True):
        st = topt.state[p]
        if cols:
            np.testing.assert_allclose(row_var[off:off + rows], st["row_var"].numpy().ravel(), rtol=1e-13)
            np.testing.assert_allclose(col_var[off:off + cols], st["col_var"].numpy().ravel(), rtol=1e-13)
        else:
            np.testing.assert_allclose(row_var[off:off + rows], st["variance"].numpy(), rtol=1e-13)


def _newton_schulz_float64(grad, ns_coefficients, ns_steps, eps):
    """torch's _zeropower_via_newtonschulz without its cast to bfloat16: the same iteration in float64."""
    a, b, c = ns_coefficients
    X = grad.clone()
    if grad.size(0) > grad.size(1):
        X = X.T
    X = X / X.norm().clamp(min=eps)
    for _ in range(ns_steps):
        A = X @ X.T
        B = A.addmm(A, A, beta=b, alpha=c)
        X = X.addmm(B, X, beta=a)
    return X.T if grad.size(0) > grad.size(1) else X


class Pair:
    """torch.optim.Muon on the matrices and another optimizer on the biases, as torch's docs set them up."""

    def __init__(self, torch, params, muon: dict, rest: str, rest_kw: dict):
        self.opts = [torch.optim.Muon(params[::2], **muon), getattr(torch.optim, rest)(params[1::2], **rest_kw)]

    def step(self):
        for o in self.opts:
            o.step()


# (our hyperparameters, torch's Muon kwargs, the rest's torch class and kwargs)
MUON_CASES = [
    (dict(), dict(), "AdamW", dict()),
    (dict(lr=0.02, rest={"name": "adamw", "lr": 3e-3}), dict(lr=0.02), "AdamW", dict(lr=3e-3)),
    (dict(lr=0.02, nesterov=False, weight_decay=0.0), dict(lr=0.02, nesterov=False, weight_decay=0.0), "AdamW", {}),
    (dict(lr=0.01, momentum=0.8, adjust_lr_fn="match_rms_adamw", rest={"name": "adam", "lr": 0.01}),
     dict(lr=0.01, momentum=0.8, adjust_lr_fn="match_rms_adamw"), "Adam", dict(lr=0.01)),
    (dict(lr=0.02, ns_steps=3, ns_coefficients=(2.0, -1.5, 0.5), eps=1e-4, rest={"name": "sgd", "lr": 0.05}),
     dict(lr=0.02, ns_steps=3, ns_coefficients=(2.0, -1.5, 0.5), eps=1e-4), "SGD", dict(lr=0.05)),
    (dict(lr=0.02, weight_decay=0.3, rest={"name": "rprop", "lr": 1e-3}), dict(lr=0.02, weight_decay=0.3),
     "Rprop", dict(lr=1e-3)),
]


@pytest.mark.parametrize("ours,muon,rest,rest_kw", MUON_CASES, ids=[f"muon-{i}" for i in range(len(MUON_CASES))])
def test_muon_with_its_rest_matches_torch(ours, muon, rest, rest_kw, monkeypatch):
    """Muon on the weight matrices (Newton-Schulz per matrix, tall ones transposed, the lr adjusted by shape)
    and the rest optimizer on the biases, against torch.optim.Muon + torch's optimizer for the rest. torch
    runs Newton-Schulz in bfloat16; ours in theta's dtype: compared here with torch's iteration in float64."""
    torch = torch_or_skip()
    import torch.optim._muon as torch_muon

    monkeypatch.setattr(torch_muon, "_zeropower_via_newtonschulz", _newton_schulz_float64)
    worst, moved = race(torch, "muon", ours, lambda ps: Pair(torch, ps, muon, rest, rest_kw))
    assert moved > 1e-3


def test_muon_float32_stays_near_torchs_bfloat16_muon():
    """In float32 our Newton-Schulz runs in float32, torch's in bfloat16 (8 bits of mantissa): the two agree
    to bfloat16's precision step by step, not to the last digit."""
    torch = torch_or_skip()
    torch.set_default_dtype(torch.float32)
    rng = np.random.default_rng(2)
    net = MLP([12, 10, 4], "tanh", "identity", "squared_error", "float32")
    theta = net.init(seed=2)
    X, Y = rng.normal(size=(32, 12)).astype(np.float32), rng.normal(size=(32, 4)).astype(np.float32)
    opt = Optimizer("muon", net.layout.size, np.float32, layout=net.layout, lr=0.02)
    params = torch_tensors(torch, net, theta)
    topt = Pair(torch, params, dict(lr=0.02), "AdamW", {})
    for _ in range(20):
        start = theta.copy()
        _, g = net.loss_and_grad(theta, X, Y)
        opt.step(theta, g)
        for p, q in zip(params, torch_tensors(torch, net, start), strict=True):
            p.data.copy_(q.data)  # each step from the same point: the error of one step, not a drift
        set_grads(torch, params, net, g)
        topt.step()
        ours, theirs = theta - start, flat(params) - start
        assert np.linalg.norm(ours - theirs) < 0.05 * np.linalg.norm(theirs)


LBFGS_CASES = [dict(), dict(line_search_fn="strong_wolfe"),
               dict(lr=0.5, history_size=4, max_iter=6, tolerance_grad=1e-9),
               dict(line_search_fn="strong_wolfe", history_size=3, max_eval=12, tolerance_change=1e-12)]
LBFGS_IDS = ["fixed", "strong-wolfe", "short-history", "wolfe-max-eval"]


def lbfgs_race(torch, hyper, sizes, activation, output, loss, steps, shared_start):
    """Full-batch L-BFGS both sides, each closure our network's loss and gradient at that side's parameters;
    the worst relative difference after a step. shared_start: torch starts each step from our point."""
    torch.set_default_dtype(torch.float64)
    rng = np.random.default_rng(4)
    net = MLP(sizes, activation, output, loss, "float64")
    start = net.init("xavier_normal", "scheme", seed=4)
    X = rng.normal(size=(40, sizes[0]))
    Y = np.eye(sizes[-1])[rng.integers(0, sizes[-1], 40)] if output == "softmax" else rng.normal(size=(40, sizes[-1]))
    theta = start.copy()
    opt = Optimizer("lbfgs", net.layout.size, np.float64, **hyper)
    params = torch_tensors(torch, net, start)
    topt = torch.optim.LBFGS(params, **{k: (None if v == "none" else v) for k, v in hyper.items()})

    def closure():
        value, g = net.loss_and_grad(flat(params), X, Y)
        set_grads(torch, params, net, g)
        return torch.tensor(value)

    worst = 0.0
    for step in range(steps):
        if shared_start:  # our point and history into torch's: each step from one and the same state
            for p, q in zip(params, torch_tensors(torch, net, theta), strict=True):
                p.data.copy_(q.data)
            st, ts = opt.closure.state, topt.state[params[0]]
            if st.d is not None:
                as_t = torch.from_numpy
                ts.update(d=as_t(st.d.copy()), t=float(st.t), old_dirs=[as_t(v.copy()) for v in st.old_dirs],
                          old_stps=[as_t(v.copy()) for v in st.old_stps], ro=[torch.tensor(float(v)) for v in st.ro],
                          H_diag=torch.tensor(float(st.H_diag)), prev_flat_grad=as_t(st.prev_flat_grad.copy()),
                          prev_loss=st.prev_loss, n_iter=st.n_iter, func_evals=st.func_evals)
        ours_loss = opt.step_closure(theta, lambda th: net.loss_and_grad(th, X, Y))
        their_loss = float(topt.step(closure))
        ref = flat(params)
        err = np.max(np.abs(theta - ref)) / np.max(np.abs(ref))
        worst = max(worst, err)
        assert err < 1e-10, f"step {step}: relative difference {err:.3g}"
        assert ours_loss == pytest.approx(their_loss, rel=1e-10)
    assert opt.closure.state.func_evals == topt.state[params[0]]["func_evals"]
    assert net.loss_and_grad(theta, X, Y)[0] < 0.7 * net.loss_and_grad(start, X, Y)[0]  # it trained
    return worst


@pytest.mark.parametrize("hyper", LBFGS_CASES, ids=LBFGS_IDS)
def test_lbfgs_full_batch_matches_torch_on_a_convex_network(hyper):
    """Softmax regression (one layer, cross-entropy: convex), the whole training set each step: torch.optim.LBFGS
    re-evaluates the loss within its step as ours does; 10 steps of up to max_iter iterations each."""
    lbfgs_race(torch_or_skip(), hyper, [6, 4], "tanh", "softmax", "cross_entropy", 10, shared_start=False)


@pytest.mark.parametrize("hyper", LBFGS_CASES, ids=LBFGS_IDS)
def test_lbfgs_full_batch_matches_torch_step_by_step_on_a_deep_network(hyper):
    """The tanh network, where L-BFGS is chaotic (a last-digit difference in a dot product, as between any two
    BLAS, grew ~100x a step, to 1e-9 by step 4): each step from one and the same point and history."""
    lbfgs_race(torch_or_skip(), hyper, SIZES, "tanh", "identity", "squared_error", 15, shared_start=True)
