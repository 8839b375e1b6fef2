"""The optimizer's internals against quantities computed here independently: update ratios from the
parameters before and after each step, Adam's effective step from PyTorch's own state, Demon's beta_t,
RAdam's rho_t and NAdam's mu_t from their definitions, Lion's sign agreement from its gradients."""

import math

import numpy as np
import pytest
from conftest import torch_or_skip

from tuilab.engine.nn import internals
from tuilab.engine.nn.model import MLP
from tuilab.engine.nn.optim import Optimizer
from tuilab.engine.records.run_records import RunRecords
from tuilab.engine.training.fit import train_steps


def _problem(dtype, sizes=(64, 12, 8, 3), rows=96, seed=0):
    rng = np.random.default_rng(seed)
    net = MLP(list(sizes), "tanh", "softmax", "cross_entropy", dtype)
    X = rng.normal(size=(rows, sizes[0])).astype(net.dtype)
    Y = np.eye(sizes[-1], dtype=net.dtype)[rng.integers(0, sizes[-1], rows)]
    return net, net.init("xavier_normal", "zeros", seed), X, Y


@pytest.mark.parametrize("path", ["1 thread", "gather ahead", "split 1/3"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_the_kernels_step_norms_are_those_of_the_parameters_before_and_after(path, dtype, on_path):
    on_path(path)
    net, theta, X, Y = _problem(dtype)
    L, bs, n = net.layout.n_layers, 16, 6
    order = np.random.default_rng(3).permutation(len(X))
    opt = Optimizer("adam", net.layout.size, net.dtype, lr=0.01)
    twin, theta_twin = Optimizer("adam", net.layout.size, net.dtype, lr=0.01), theta.copy()
    grad_sq = np.zeros((n, 3 * L))
    assert train_steps(net, opt, theta, X, Y, order, 0, np.full(n, 0.01), bs, grad_sq)[0] == n
    for s in range(n):  # the same steps one at a time, norms taken here from the parameters themselves
        before = theta_twin.astype(np.float64)
        train_steps(net, twin, theta_twin, X, Y, order, s, np.full(1, 0.01), bs)
        for l in range(L):
            part = net.layout.layer_slice(l)
            change = theta_twin[part].astype(np.float64) - before[part]
            after = theta_twin[part].astype(np.float64)
            tol = 1e-10 if dtype == "float64" else 2e-5
            assert grad_sq[s, L + l] == pytest.approx(change @ change, rel=tol)
            assert grad_sq[s, 2 * L + l] == pytest.approx(after @ after, rel=tol)
    np.testing.assert_array_equal(theta, theta_twin)  # the norms changed nothing
    last, mean = internals.update_ratios(grad_sq, L)
    ratios = np.sqrt(grad_sq[:, L:2 * L] / grad_sq[:, 2 * L:])
    np.testing.assert_allclose(last, ratios[-1])
    np.testing.assert_allclose(mean, ratios.mean(axis=0))


def _driven(name, n_params, steps, seed=1, **hyper):
    """Our optimizer stepped `steps` times with a fixed sequence of random gradients (float64)."""
    rng = np.random.default_rng(seed)
    grads = [rng.normal(size=n_params) * (1 + 10 * rng.random(n_params)) for _ in range(steps)]
    opt = Optimizer(name, n_params, np.float64, total_steps=steps, **hyper)
    theta = rng.normal(size=n_params)
    for g in grads:
        opt.step(theta, g.copy())
    return opt, theta, grads


@pytest.mark.parametrize("amsgrad", [False, True])
def test_adams_effective_step_from_torchs_exp_avg_sq_and_step_count(amsgrad):
    torch = torch_or_skip()
    net = MLP([7, 5, 3], "relu", "softmax", "cross_entropy", "float64")
    n, lr, steps = net.layout.size, 3e-3, 25
    opt, _, grads = _driven("adam", n, steps, lr=lr, amsgrad=amsgrad)
    p = torch.nn.Parameter(torch.zeros(n, dtype=torch.float64))
    topt = torch.optim.Adam([p], lr=lr, amsgrad=amsgrad)
    for g in grads:
        p.grad = torch.tensor(g)
        topt.step()
    st = topt.state[p]
    t = float(st["step"])
    v = (st["max_exp_avg_sq"] if amsgrad else st["exp_avg_sq"]).numpy()
    theirs = (lr / (1 - 0.9 ** t)) / (np.sqrt(v) / math.sqrt(1 - 0.999 ** t) + 1e-8)
    np.testing.assert_allclose(internals.effective_step(opt, lr), theirs, rtol=1e-12)
    got = internals.epoch_internals(opt, net.layout, lr, np.zeros((0, 3 * net.layout.n_layers)))
    for l in range(net.layout.n_layers):
        part = theirs[net.layout.layer_slice(l)]
        for q in (10, 50, 90):
            assert got[f"eff_step_p{q}_{l + 1}"] == pytest.approx(np.percentile(part, q), rel=1e-12)
    assert got["bias_correction1"] == pytest.approx(1 - 0.9 ** t) and got["bias_correction2"] == pytest.approx(
        1 - 0.999 ** t)


def _radam_effective(st, t, lr, b1=0.9, b2=0.999, eps=1e-8):
    rho_inf = 2 / (1 - b2) - 1
    rho = rho_inf - 2 * t * b2 ** t / (1 - b2 ** t)
    if rho <= 5:
        return np.full(st["exp_avg_sq"].shape, lr / (1 - b1 ** t))
    rect = math.sqrt((rho - 4) * (rho - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho))
    return lr * rect * math.sqrt(1 - b2 ** t) / (np.sqrt(st["exp_avg_sq"].numpy()) + eps) / (1 - b1 ** t)


# each adaptive optimizer's effective step, written from torch's own state after the same gradients: the
# formula and our state's slot order checked at once (issue 28: a reordered hp_order or slot broke them unseen)
EFFECTIVE_FROM_TORCH = {
    "adagrad": ("Adagrad", {"lr_decay": 0.01},
                lambda st, t, lr: lr / (1 + (t - 1) * 0.01) / (np.sqrt(st["sum"].numpy()) + 1e-10)),
    "rmsprop": ("RMSprop", {}, lambda st, t, lr: lr / (np.sqrt(st["square_avg"].numpy()) + 1e-8)),
    "rmsprop-centered": ("RMSprop", {"centered": True},
                         lambda st, t, lr: lr / (np.sqrt(st["square_avg"].numpy() - st["grad_avg"].numpy() ** 2)
                                                 + 1e-8)),
    "adadelta": ("Adadelta", {}, lambda st, t, lr: lr * np.sqrt(st["acc_delta"].numpy() + 1e-6)
                 / np.sqrt(st["square_avg"].numpy() + 1e-6)),
    "adamax": ("Adamax", {}, lambda st, t, lr: (lr / (1 - 0.9 ** t)) / st["exp_inf"].numpy()),
    "nadam": ("NAdam", {}, lambda st, t, lr: lr / (np.sqrt(st["exp_avg_sq"].numpy() / (1 - 0.999 ** t)) + 1e-8)),
    "radam": ("RAdam", {}, _radam_effective),
    "rprop": ("Rprop", {}, lambda st, t, lr: st["step_size"].numpy()),
}


@pytest.mark.parametrize("steps", [3, 25])
@pytest.mark.parametrize("case", sorted(EFFECTIVE_FROM_TORCH))
def test_each_effective_step_against_its_formula_on_torchs_state(case, steps):
    torch = torch_or_skip()
    cls, hyper, formula = EFFECTIVE_FROM_TORCH[case]
    name, n, lr = case.split("-")[0], 40, 3e-3
    opt, _, grads = _driven(name, n, steps, lr=lr, **hyper)
    p = torch.nn.Parameter(torch.zeros(n, dtype=torch.float64))
    topt = getattr(torch.optim, cls)([p], lr=lr, **hyper)
    for g in grads:
        p.grad = torch.tensor(g)
        topt.step()
    st = topt.state[p]
    np.testing.assert_allclose(internals.effective_step(opt, lr), formula(st, float(st["step"]), lr), rtol=1e-10)


def test_qhadams_effective_step_from_its_second_moment_recomputed_from_the_gradients():
    """QHAdam (no torch.optim): lr / (sqrt(nu2 v / (1 - b2^t)) + eps), v recomputed here from the gradients."""
    lr, b2, nu2, steps = 3e-3, 0.999, 0.8, 25
    opt, _, grads = _driven("qhadam", 40, steps, lr=lr, nus=(0.7, nu2))
    v = np.zeros(40)
    for g in grads:
        v = b2 * v + (1 - b2) * g * g
    expect = lr / (np.sqrt(nu2 * v / (1 - b2 ** steps)) + 1e-8)
    np.testing.assert_allclose(internals.effective_step(opt, lr), expect, rtol=1e-10)


@pytest.mark.parametrize("name", ["adam", "adagrad", "rmsprop", "adadelta", "nadam", "radam", "adamax", "qhadam"])
def test_weights_without_a_gradient_are_counted_not_read_as_steps(name):
    """A dead unit's weights never get a gradient: their "effective step" is lr / eps (2.1e3 .. 1e6 on spirals,
    issue 27). They are left out of the percentiles and counted in no_gradient_l."""
    net = MLP([7, 5, 3], "relu", "softmax", "cross_entropy", "float64")
    n, lr, steps = net.layout.size, 3e-3, 20
    rng = np.random.default_rng(5)
    dead = np.zeros(n, bool)
    first = net.layout.layer_slice(0)
    dead[first.start:first.start + 14] = True  # 14 of layer 1's 40 parameters
    opt = Optimizer(name, n, np.float64, total_steps=steps)
    theta = rng.normal(size=n)
    for _ in range(steps):
        g = rng.normal(size=n)
        g[dead] = 0.0
        opt.step(theta, g)
    got = internals.epoch_internals(opt, net.layout, lr, np.zeros((0, 3 * net.layout.n_layers)))
    eff = internals.effective_step(opt, lr)
    for l in range(net.layout.n_layers):
        sl = net.layout.layer_slice(l)
        alive = eff[sl][~dead[sl]]
        assert got[f"no_gradient_{l + 1}"] == pytest.approx(dead[sl].mean())
        for q in (10, 50, 90):
            assert got[f"eff_step_p{q}_{l + 1}"] == pytest.approx(np.percentile(alive, q), rel=1e-12)
    assert got["no_gradient_1"] == pytest.approx(14 / 40) and got["no_gradient_2"] == 0.0
    assert set(internals.columns(2, [opt.spec])) >= {"no_gradient_1", "no_gradient_2"}


@pytest.mark.parametrize("steps", [1, 40, 99, 130])
def test_demons_momentum_at_the_last_step_is_the_papers_beta_t(steps):
    T, beta0 = 100, 0.9
    opt, _, _ = _driven("demon_momentum", 9, steps, demon_steps=T)
    t = steps - 1  # the last step's t, counted from 0 (Chen et al. 2019)
    rest = max(0.0, 1 - t / T)
    expect = beta0 * rest / ((1 - beta0) + beta0 * rest)
    assert internals.scalars(opt)["momentum_t"] == pytest.approx(expect, abs=1e-15)


@pytest.mark.parametrize("steps, adaptive", [(1, 0.0), (4, 0.0), (6, 1.0), (200, 1.0)])
def test_radams_rho_t_and_branch_from_the_definition(steps, adaptive):
    opt, _, _ = _driven("radam", 6, steps)
    b2 = 0.999
    rho_inf = 2 / (1 - b2) - 1
    rho = rho_inf - 2 * steps * b2 ** steps / (1 - b2 ** steps)
    got = internals.scalars(opt)
    assert got["radam_rho"] == pytest.approx(rho, rel=1e-9) and got["radam_adaptive"] == adaptive
    assert (rho > 5) == bool(adaptive)


def test_nadams_mu_t_from_the_definition():
    opt, _, _ = _driven("nadam", 6, 17)
    expect = 0.9 * (1 - 0.5 * 0.96 ** (17 * 4e-3))
    got = internals.scalars(opt)
    assert got["nadam_mu"] == pytest.approx(expect, rel=1e-14) == got["momentum_t"]


def test_lions_sign_agreement_from_its_gradient():
    rng = np.random.default_rng(5)
    n = 400
    opt = Optimizer("lion", n, np.float64, lr=1e-3, betas=(0.9, 0.99))
    theta = rng.normal(size=n)
    for _ in range(30):
        opt.step(theta, rng.normal(size=n))
    before = opt.state[0].copy()
    g = rng.normal(size=n)
    opt.step(theta, g.copy())
    update = 0.9 * before + 0.1 * g  # the direction of Lion's step (Chen et al. 2023)
    expect = np.mean(np.sign(update) == np.sign(g))
    assert internals.scalars(opt, before)["lion_agreement"] == pytest.approx(expect, abs=1e-12)
    assert 0.4 < expect < 1.0


def test_a_trainer_records_the_internals_each_epoch(tmp_path, monkeypatch):
    from tuilab.engine.training import train

    monkeypatch.setattr(train, "INTERNALS_WORK", 1)  # every epoch, however small
    from tuilab.engine.config.presets import load_experiment
    from tuilab.engine.records.run_records import read_records
    from tuilab.engine.training.runner import run_network

    exp = load_experiment("optimizer-zoo", [("data.name", "digits"), ("train.epochs", 2)])
    keep = [r for r in exp.runs if r.optimizer.name in ("sgd", "adam", "radam", "lion", "demon_adam")]
    from dataclasses import replace

    exp = replace(exp, runs=tuple(keep))
    run_network(exp, records=RunRecords(tmp_path / "r"))
    rows = read_records(tmp_path / "r").metrics
    assert len(rows) == 2 * len(keep)
    for row in rows:
        L = sum(1 for k in row if k.startswith("grad_norm_"))
        for l in range(1, L + 1):
            assert 0 < row[f"update_ratio_{l}"] < 1 and 0 < row[f"update_ratio_mean_{l}"] < 1
        name = next(r.optimizer.name for r in keep if r.label == row["label"])
        if name in ("adam", "radam", "demon_adam"):
            assert row["eff_step_p10_1"] <= row["eff_step_p50_1"] <= row["eff_step_p90_1"]
            assert 0 < row["bias_correction2"] < 1
        if name == "lion":
            assert 0 < row["lion_agreement"] <= 1
        if name == "sgd":
            assert math.isnan(row["eff_step_p50_1"])  # no per-parameter scale: left empty


def test_internals_off_leave_the_columns_out(tmp_path):
    from tuilab.engine.config.presets import load_experiment
    from tuilab.engine.records.run_records import read_records
    from tuilab.engine.training.runner import run_network

    exp = load_experiment("xor", [("train.internals", False), ("train.epochs", 3)])
    run_network(exp, records=RunRecords(tmp_path / "r"))
    row = read_records(tmp_path / "r").metrics[0]
    assert "grad_norm_1" in row and not any(k.startswith("update_ratio") for k in row)


def test_an_older_table_goes_on_with_the_new_columns_empty(tmp_path):
    rec = RunRecords(tmp_path)
    rec.open("title = 'x'\n")
    rec.start_table("metrics.csv", ["run", "epoch", "train_loss"])
    rec.append_many("metrics.csv", [{"run": 0, "epoch": 1, "train_loss": 0.5},
                                    {"run": 0, "epoch": 2, "train_loss": 0.4}])
    rec.close()
    again = RunRecords(tmp_path)
    again.continue_table("metrics.csv", ["run", "epoch", "train_loss", "update_ratio_1"], lambda r: r["epoch"] == "1")
    again.append("metrics.csv", {"run": 0, "epoch": 2, "train_loss": 0.3, "update_ratio_1": 1e-3})
    again.close()
    lines = (tmp_path / "metrics.csv").read_text().splitlines()
    assert lines == ["run,epoch,train_loss,update_ratio_1", "0,1,0.5,", "0,2,0.3,0.001"]


@pytest.mark.parametrize("path", ["1 thread", "split 1/3"])
def test_an_epoch_measures_a_sample_of_its_steps_and_its_last(path, on_path):
    on_path(path)
    net, theta, X, Y = _problem("float32", rows=800)
    L, bs = net.layout.n_layers, 8
    steps = 100
    norms = internals.step_norms_buffer(steps, L)
    every = max(internals.SAMPLE_EVERY, -(-steps // internals.SAMPLED_STEPS))  # 8
    measured = sorted(set(range(every - 1, steps, every)) | {steps - 1})
    assert [s for s in range(steps) if not np.isnan(norms[s, L])] == measured
    opt = Optimizer("sgd", net.layout.size, net.dtype, lr=0.05, momentum=0.9)
    assert train_steps(net, opt, theta, X, Y, np.arange(800), 0, np.full(steps, 0.05), bs, norms)[0] == steps
    assert (norms[:, :L] > 0).all()  # gradient norms: every step
    for s in range(steps):
        assert np.isnan(norms[s, L:]).all() != (s in measured)
    assert (norms[measured, L:] > 0).all()
    last, mean = internals.update_ratios(norms, L)
    ratios = np.sqrt(norms[measured, L:2 * L] / norms[measured, 2 * L:])
    np.testing.assert_allclose(last, ratios[-1], rtol=1e-6)
    np.testing.assert_allclose(mean, ratios.mean(axis=0), rtol=1e-6)


def test_small_epochs_record_the_internals_every_kth_epoch_and_the_first_and_last(tmp_path):
    from tuilab.engine.config.presets import load_experiment
    from tuilab.engine.records.run_records import read_records
    from tuilab.engine.training import train
    from tuilab.engine.training.runner import DataCache, DataOptions, run_network

    for preset, epochs in (("spirals", 40), ("xor", 3000)):
        exp = load_experiment(preset, [("train.epochs", epochs)])
        run_network(exp, records=RunRecords(tmp_path / preset))
        inside = [r["epoch"] for r in read_records(tmp_path / preset).metrics if not math.isnan(r["update_ratio_1"])]
        d = DataCache(DataOptions(), lambda e: None).get(exp.runs[0])
        sizes = [d.n_inputs, *exp.runs[0].model.hidden, d.n_outputs]
        work = len(d.X_train) * sum(a * b + b for a, b in zip(sizes, sizes[1:], strict=False))
        k = min(train.INTERNALS_EVERY_MOST, -(-train.INTERNALS_WORK // work))  # a count of work, not of time
        assert 1 < k < epochs  # some epochs left out: spirals' every 5th, xor's every 1000th
        assert inside == sorted({1, epochs} | set(range(k, epochs + 1, k)))


# -- surfaces: the optimizer inside at each point of a trajectory --

def _surface_run(name, steps=60, **hyper):
    from tuilab.engine.surfaces.landscapes import descend, make_landscape

    land = make_landscape("rosenbrock")
    return land, descend(land, name, (-1.5, 2.0), steps, steps + 1, **hyper)  # every step kept


@pytest.mark.parametrize("name, hyper", [("adam", {"lr": 0.05}), ("momentum", {"lr": 1e-4}),
                                         ("nadam", {"lr": 0.05}), ("lbfgs", {"lr": 0.5})])
def test_a_trajectorys_steps_are_the_differences_of_its_points(name, hyper):
    _, r = _surface_run(name, steps=30, **hyper)
    assert list(r.steps) == list(range(31))
    moves = np.diff(r.path, axis=0)
    np.testing.assert_array_equal(np.column_stack([r.inner["step_x"], r.inner["step_y"]])[1:], moves)
    assert math.isnan(r.inner["step_x"][0])


def test_adams_effective_step_along_a_trajectory_from_torchs_state_at_each_step():
    torch = torch_or_skip()
    land, r = _surface_run("adam", lr=0.05)
    p = torch.nn.Parameter(torch.tensor([-1.5, 2.0], dtype=torch.float64))
    topt = torch.optim.Adam([p], lr=0.05)
    for s in range(1, 61):
        p.grad = torch.tensor(land.gradient(*p.detach().numpy()))
        topt.step()
        st = topt.state[p]
        v, t = st["exp_avg_sq"].numpy(), float(st["step"])
        theirs = (0.05 / (1 - 0.9 ** t)) / (np.sqrt(v) / math.sqrt(1 - 0.999 ** t) + 1e-8)
        ours = [r.inner["eff_step_x"][s], r.inner["eff_step_y"][s]]
        np.testing.assert_allclose(ours, theirs, rtol=1e-9)
        assert r.inner["bias_correction1"][s] == pytest.approx(1 - 0.9 ** t, rel=1e-12)
        np.testing.assert_allclose(r.path[s], p.detach().numpy(), rtol=1e-9)
    assert math.isnan(r.inner["eff_step_x"][0])


def test_demons_momentum_along_a_trajectory_is_the_papers_beta_t():
    _, r = _surface_run("demon_momentum", steps=50, lr=1e-4, demon_steps=40)
    for s in range(1, 51):
        rest = max(0.0, 1 - (s - 1) / 40)
        assert r.inner["momentum_t"][s] == pytest.approx(0.9 * rest / (0.1 + 0.9 * rest), abs=1e-15)


def test_radams_rho_along_a_trajectory_and_its_branch():
    _, r = _surface_run("radam", steps=12, lr=0.01)
    for s in range(1, 13):
        rho = 2 / 0.001 - 1 - 2 * s * 0.999 ** s / (1 - 0.999 ** s)
        assert r.inner["radam_rho"][s] == pytest.approx(rho, rel=1e-9)
        assert r.inner["radam_adaptive"][s] == float(rho > 5)
        if rho <= 5:  # its SGD branch: one step for both coordinates, lr / bias correction
            assert r.inner["eff_step_x"][s] == r.inner["eff_step_y"][s] == pytest.approx(0.01 / (1 - 0.9 ** s))


def test_surface_internals_round_trip_through_the_records(tmp_path):
    from tuilab.engine.config.presets import load_experiment
    from tuilab.engine.records.replay import replayed_surface_events
    from tuilab.engine.records.run_records import read_records
    from tuilab.engine.surfaces.runner import run_surfaces

    exp = load_experiment("rosenbrock-zoo")
    out = run_surfaces(exp, records=RunRecords(tmp_path))
    again = {e.run: e.result for e in replayed_surface_events(read_records(tmp_path), exp)}
    for i, result in enumerate(out.results):
        mine = {k: v for k, v in result.inner.items() if not np.isnan(v).all()}
        assert set(again[i].inner) == set(mine), result.label
        for k, v in mine.items():
            np.testing.assert_allclose(again[i].inner[k], v, rtol=1e-12, equal_nan=True)
    inside = [r.get("inside", {}) for r in out.runs]
    assert all("step_x" in x for x in inside)
    assert any("eff_step_x" in x for x in inside) and any("radam_rho" in x for x in inside)
