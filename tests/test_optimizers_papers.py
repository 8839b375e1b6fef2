"""qhm, qhadam, lion and Demon against NumPy references written from the papers, plus identities."""

import naive
import numpy as np
import pytest

from tuilab.engine.nn.model import Layout
from tuilab.engine.nn.optim import OPTIMIZER_NAMES, REGISTRY, Optimizer
from tuilab.kernels.optimizers import demon_beta

pytestmark = pytest.mark.blas  # the papers' updates, some through matrix products (Muon's Newton-Schulz)

STEPS = 300
N = 11


@pytest.fixture
def problem():
    rng = np.random.default_rng(11)
    c = rng.uniform(1.0, 3.0, N)
    b = rng.normal(size=N)
    noise = rng.normal(size=(STEPS, N))
    return rng.normal(size=N), c, b, noise


def run(name, problem, **hyper):
    """Our trajectory, with the gradient taken at our own iterates; also the gradients used."""
    start, c, b, noise = problem
    theta = start.copy()
    opt = Optimizer(name, N, np.float64, **hyper)
    traj, grads = [], []
    for t in range(STEPS):
        g = c * theta - b + noise[t]
        grads.append(g)
        opt.step(theta, g)
        traj.append(theta.copy())
    return np.array(traj), np.array(grads)


def test_qhm_matches_paper(problem):
    traj, grads = run("qhm", problem, lr=0.05, momentum=0.9, nu=0.7)
    ref = naive.qhm(problem[0], grads, 0.05, 0.9, 0.7)
    np.testing.assert_allclose(traj, ref, rtol=1e-12, atol=1e-12)


def test_qhadam_matches_paper(problem):
    traj, grads = run("qhadam", problem, lr=0.01, betas=(0.9, 0.999), nus=(0.7, 0.8), eps=1e-8)
    ref = naive.qhadam(problem[0], grads, 0.01, (0.9, 0.999), (0.7, 0.8), 1e-8)
    np.testing.assert_allclose(traj, ref, rtol=1e-12, atol=1e-12)


def test_lion_matches_paper(problem):
    traj, grads = run("lion", problem, lr=0.003, betas=(0.9, 0.99), weight_decay=0.5)
    ref = naive.lion(problem[0], grads, 0.003, (0.9, 0.99), 0.5)
    np.testing.assert_allclose(traj, ref, rtol=1e-12, atol=1e-12)


def test_demon_sgdm_matches_paper(problem):
    traj, grads = run("demon_momentum", problem, lr=0.02, momentum=0.9, demon_steps=STEPS)
    ref = naive.demon_sgdm(problem[0], grads, 0.02, 0.9, STEPS)
    np.testing.assert_allclose(traj, ref, rtol=1e-12, atol=1e-12)


def test_demon_adam_matches_reference(problem):
    traj, grads = run("demon_adam", problem, lr=0.01, demon_steps=STEPS)
    ref = naive.adam(problem[0], grads, 0.01, (0.9, 0.999), 1e-8, demon_T=STEPS)
    np.testing.assert_allclose(traj, ref, rtol=1e-10, atol=1e-12)


def test_demon_qhadamw_matches_reference(problem):
    traj, grads = run("demon_qhadamw", problem, lr=0.01, weight_decay=0.0, demon_steps=STEPS)
    ref = naive.qhadam(problem[0], grads, 0.01, (0.995, 0.999), (0.7, 1.0), 1e-8, demon_T=STEPS)
    np.testing.assert_allclose(traj, ref, rtol=1e-10, atol=1e-12)


def test_demon_qhm_matches_reference(problem):
    traj, grads = run("demon_qhm", problem, lr=0.05, momentum=0.9, nu=0.7, demon_steps=STEPS)
    ref = naive.qhm(problem[0], grads, 0.05, 0.9, 0.7, demon_T=STEPS)
    np.testing.assert_allclose(traj, ref, rtol=1e-12, atol=1e-12)


def test_demon_decay_at_step_zero_is_the_base_beta():
    for beta in (0.0, 0.5, 0.9, 0.999):
        assert demon_beta(beta, 0.0, 1000.0) == pytest.approx(beta, abs=1e-15)
    assert demon_beta(0.9, 1000.0, 1000.0) == 0.0  # fully decayed at T
    betas = [demon_beta(0.9, t, 100.0) for t in range(101)]
    assert all(a > b for a, b in zip(betas, betas[1:], strict=False))  # strictly decaying


def test_demon_with_huge_T_is_the_base_optimizer(problem):
    """As T -> infinity beta_t -> beta: Demon's first steps equal the plain optimizer's."""
    demon, _ = run("demon_adam", problem, lr=0.01, demon_steps=10**15)
    plain, _ = run("adam", problem, lr=0.01)
    np.testing.assert_allclose(demon, plain, rtol=1e-9)


def test_qhadam_with_unit_nus_is_adam(problem):
    q, _ = run("qhadam", problem, lr=0.01, betas=(0.9, 0.999), nus=(1.0, 1.0))
    a, _ = run("adam", problem, lr=0.01)
    np.testing.assert_allclose(q, a, rtol=1e-12, atol=1e-13)


def test_qhadamw_with_unit_nus_is_adamw(problem):
    q, _ = run("qhadamw", problem, lr=0.01, betas=(0.9, 0.999), nus=(1.0, 1.0), weight_decay=0.1)
    a, _ = run("adamw", problem, lr=0.01, weight_decay=0.1)
    np.testing.assert_allclose(q, a, rtol=1e-12, atol=1e-13)


def test_qhm_with_nu_one_is_momentum_with_dampening(problem):
    """nu = 1 gives buf <- beta buf + (1 - beta) g, theta -= lr buf: the EMA momentum, and
    SGD with dampening = momentum.  The two differ only in the first buffer (torch seeds
    it with g, QHM with (1 - beta) g), so SGD is compared from QHM's state after step 1."""
    start, c, b, noise = problem
    q, grads = run("qhm", problem, lr=0.05, momentum=0.8, nu=1.0)
    # EMA momentum by hand, the "normalized momentum" QHM reduces to
    theta, buf = start.copy(), np.zeros(N)
    for t in range(STEPS):
        buf = 0.8 * buf + 0.2 * grads[t]
        theta = theta - 0.05 * buf
        np.testing.assert_allclose(q[t], theta, rtol=1e-12, atol=1e-13)
    s = Optimizer("sgd", N, np.float64, lr=0.05, momentum=0.8, dampening=0.8)
    th = start.copy()
    s.step(th, grads[0])  # buf = g_1 (torch), theta moved by lr g_1
    s.state[0] = 0.2 * grads[0]  # put QHM's buffer in place
    th[:] = q[0]
    for t in range(1, STEPS):
        s.step(th, grads[t])
        np.testing.assert_allclose(th, q[t], rtol=1e-12, atol=1e-13)


def test_qhm_with_nu_zero_is_plain_sgd(problem):
    q, _ = run("qhm", problem, lr=0.05, momentum=0.9, nu=0.0)
    s, _ = run("sgd", problem, lr=0.05)
    np.testing.assert_allclose(q, s, rtol=1e-13, atol=1e-14)


@pytest.mark.parametrize("name", OPTIMIZER_NAMES)
def test_every_optimizer_descends_a_parabola(name):
    """optax's alias test in small: every entry minimises a quadratic from a fixed start."""
    spec = REGISTRY[name]
    lr = {"adadelta": 1.0, "lion": 0.01, "adagrad": 0.3}.get(name, 0.05)
    hyper = {"lr": lr}
    if "demon_steps" in spec.defaults:
        hyper["demon_steps"] = 2000
    theta = np.array([2.0, -1.5, 0.5])
    start = 0.5 * np.sum(theta**2)
    # Muon works on matrices: theta as a 1 x 2 weight matrix and a bias (which its rest, AdamW, takes)
    layout = Layout.of([2, 1]) if spec.rest else None
    opt = Optimizer(name, 3, np.float64, layout=layout, **hyper)
    for _ in range(2000):
        if spec.closure is not None:  # L-BFGS asks for f and its gradient as often as it needs
            opt.step_closure(theta, lambda th: (0.5 * np.sum(th**2), th.copy()))
        else:
            opt.step(theta, theta.copy())
    assert 0.5 * np.sum(theta**2) < 1e-2 * start, f"{name} ended at {theta}"


def test_same_kernel_moves_a_big_vector_and_a_point():
    """One kernel for 600k parameters and for 2: coordinates evolve independently."""
    rng = np.random.default_rng(0)
    big = rng.normal(size=600_000)
    grads = rng.normal(size=(5, 600_000))
    opt_big = Optimizer("adam", big.size, np.float64, lr=0.01)
    traj_big = big.copy()
    for g in grads:
        opt_big.step(traj_big, g)
    opt_pt = Optimizer("adam", 2, np.float64, lr=0.01)
    pt = big[[17, 599_999]].copy()
    for g in grads:
        opt_pt.step(pt, g[[17, 599_999]].copy())
    np.testing.assert_array_equal(pt, traj_big[[17, 599_999]])


def test_demon_past_its_steps_is_plain_sgd(problem):
    """Past demon_steps the momentum has decayed to 0 and stays there: each later step is v = -lr g,
    theta += v, plain gradient descent from wherever Demon left theta (no Demon formula in this check)."""
    T = 100
    traj, grads = run("demon_momentum", problem, lr=0.02, momentum=0.9, demon_steps=T)
    for t in range(T + 1, STEPS):
        np.testing.assert_allclose(traj[t], traj[t - 1] - 0.02 * grads[t], rtol=1e-13, atol=1e-13)
    assert np.all(np.isfinite(traj))


def test_demon_on_rosenbrock_past_its_steps_does_not_diverge():
    from tuilab.engine.surfaces.landscapes import descend, make_landscape

    r = descend(make_landscape("rosenbrock"), "demon_momentum", (-1.5, 2.0), 300, lr=5e-4, demon_steps=100)
    assert r.status != "diverged" and r.steps_done == 300
