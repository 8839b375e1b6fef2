"""One optimizer table drives the network step and the surface descent; ids outside it raise."""

import numpy as np
import pytest

from tuilab.engine.nn import optim
from tuilab.engine.nn.model import MLP
from tuilab.engine.nn.optim import OPTIMIZER_NAMES, REGISTRY, Optimizer, OptimizerSpec
from tuilab.engine.surfaces.landscapes import descend, make_landscape
from tuilab.errors import TuilabError
from tuilab.kernels import optimizers as K
from tuilab.kernels import surfaces as S

STEPS = 150


def _hyper(name):
    # Demon's schedule shorter than the run, so the steps past T are compared too
    return {"demon_steps": 60} if name.startswith("demon_") else {}


# Muon needs matrices (refused below); L-BFGS has no kernel row (its closure re-evaluates f: test_surfaces)
ON_SURFACES = [n for n in OPTIMIZER_NAMES if not REGISTRY[n].rest and REGISTRY[n].closure is None]


@pytest.mark.parametrize("name", ON_SURFACES)
@pytest.mark.parametrize("surface", ["rosenbrock", "ill-conditioned"])
def test_network_step_and_surface_descent_take_identical_steps(name, surface):
    land = make_landscape(surface)
    start = (-1.5, 2.0) if surface == "rosenbrock" else (-9.0, 3.0)
    spec = REGISTRY[name]
    lr = spec.defaults["lr"] * (0.1 if surface == "rosenbrock" else 1.0)
    got = descend(land, name, start, STEPS, max_points=STEPS + 1, lr=lr, **_hyper(name))

    # the network path: optimizer_step, as train_chunk calls it, fed the gradient at each point
    opt = Optimizer(name, 2, np.float64, total_steps=STEPS, lr=lr, **_hyper(name))
    theta = np.array(start, np.float64)
    points = [theta.copy()]
    for _ in range(got.steps_done):
        opt.step(theta, np.array(land.gradient(*theta), np.float64))
        points.append(theta.copy())
    assert got.steps.tolist() == list(range(got.steps_done + 1))
    np.testing.assert_array_equal(got.path, np.array(points))
    assert got.steps_done == STEPS or got.status == "diverged"


def test_an_optimizer_for_matrices_is_refused_on_a_surface_in_words(tmp_path):
    from tuilab.engine.config.presets import load_experiment

    with pytest.raises(TuilabError, match="muon orthogonalises weight matrices, and a surface's point is two"):
        descend(make_landscape("rosenbrock"), "muon", (-1.5, 2.0), 10)
    preset = tmp_path / "p.toml"
    preset.write_text('[surface]\nname = "rosenbrock"\n[optimizer]\nname = "adam"\n'
                      '[[runs]]\nlabel = "m"\noptimizer = { name = "muon" }\n')
    with pytest.raises(TuilabError, match="run 'm': muon orthogonalises weight matrices.*network preset"):
        load_experiment(str(preset))


def test_every_row_of_the_table_is_registered_and_every_entry_has_a_row():
    used = {spec.opt_id for spec in REGISTRY.values() if spec.closure is None}
    assert used == set(range(len(K.STEP_KERNELS)))
    for spec in REGISTRY.values():
        if spec.closure is None:
            assert K.STEP_KERNELS[spec.opt_id] is spec.step
        else:  # no row: train_steps and descend hand it a closure
            assert spec.step is None and spec.opt_id == -1


@pytest.mark.parametrize("bad", [len(K.STEP_KERNELS), -1, 99])
def test_an_id_outside_the_table_raises_in_both_paths(bad):
    theta, grad = np.zeros(2), np.ones(2)
    state, scal, hp = np.zeros((3, 2)), np.zeros(K.N_SCALARS), np.zeros(8)
    with pytest.raises(ValueError, match="unknown optimizer id"):
        K.optimizer_step(bad, theta, grad, state, scal, hp, 0.1)
    assert theta.tolist() == [0.0, 0.0]  # nothing ran (an unknown id used to run Lion)
    path = np.empty((4, 6))
    with pytest.raises(ValueError, match="unknown optimizer id"):
        S.surface_descent(S.QUADRATIC, np.array([1.0]), theta, state, scal, hp, bad, 0.1, 3,
                          np.zeros((1, 2)), 1e-3, 1, path, -1, np.zeros((4, 0)))


def _spec(**kw):
    base = dict(name="trial", step=K.sgd_step, summary="trial",
                defaults=dict(lr=0.1, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False))
    return OptimizerSpec(**{**base, **kw})


def test_a_registry_entry_with_a_hyperparameter_without_a_rule_is_refused_in_words():
    with pytest.raises(TuilabError, match="'zeta' has no rule.*_PARAM_RULES"):
        optim._register(_spec(defaults=dict(lr=0.1, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False,
                                            zeta=3.0)))
    assert "trial" not in REGISTRY


def test_a_registry_entry_whose_kernel_is_not_in_the_table_is_refused():
    with pytest.raises(TuilabError, match="not a row of kernels.optimizers.STEP_KERNELS"):
        optim._register(_spec(step=K.begin_step))
    with pytest.raises(TuilabError, match="kernel's hp names 'nesterov', which has no default"):
        optim._register(_spec(defaults=dict(lr=0.1, momentum=0.0, dampening=0.0, weight_decay=0.0)))
    with pytest.raises(TuilabError, match="betas is 2 numbers in its kernel's hp"):
        optim._register(_spec(step=K.lion_step, defaults=dict(lr=0.1, betas=0.9, weight_decay=0.0)))
    assert "trial" not in REGISTRY


def test_each_entrys_hp_order_and_slots_are_its_kernels_named_places():
    """One optimizer, one place (issue 28): the registry reads its kernel's positions, and the hp vector it builds
    puts each hyperparameter where the kernel's named place says."""
    for spec in REGISTRY.values():
        if spec.closure is not None:
            continue
        hp_places, state_places = K.LAYOUT_OF[spec.step]
        assert spec.slots == state_places._fields
        net = MLP([2, 2], "relu", "identity", "squared_error", "float64")
        opt = Optimizer(spec.name, 6, np.float64, total_steps=10, layout=net.layout if spec.rest else None)
        for name, width in type(hp_places).grouped:
            value = opt.hyper[name]
            for k in range(width):
                place = getattr(hp_places, f"{name}_{k}" if width > 1 else name)
                want = value[k] if width > 1 else value
                want = {"original": 0, "match_rms_adamw": 1}.get(want, want)
                assert opt.hp[place] == (-1.0 if want == "none" else float(want)), (spec.name, name, k)


@pytest.mark.parametrize("name", ["sgd", "adam", "rprop", "demon_adam"])
def test_maximize_takes_identical_steps_on_both_paths(name):
    """Ascending the ill-conditioned bowl: the surface loop negates as optimizer_step does."""
    land = make_landscape("ill-conditioned")
    hyper = {"maximize": True, "lr": 0.01, **_hyper(name)}
    got = descend(land, name, (-9.0, 3.0), 50, max_points=51, **hyper)
    opt = Optimizer(name, 2, np.float64, total_steps=50, **hyper)
    theta = np.array((-9.0, 3.0), np.float64)
    points = [theta.copy()]
    for _ in range(got.steps_done):
        opt.step(theta, np.array(land.gradient(*theta), np.float64))
        points.append(theta.copy())
    np.testing.assert_array_equal(got.path, np.array(points))
    assert land.value(*theta) > land.value(-9.0, 3.0)  # it went up


def test_maximize_is_for_the_optimizers_torch_has():
    from tuilab.engine.nn.optim import resolve_hyperparameters

    assert resolve_hyperparameters("adamw", {"maximize": True})["maximize"] is True
    assert "maximize" not in resolve_hyperparameters("adam", {})  # off, and unnamed, unless given
    with pytest.raises(TuilabError, match="maximize"):
        resolve_hyperparameters("lion", {"maximize": True})


@pytest.mark.parametrize("name", ON_SURFACES)
def test_a_descent_compiled_for_its_optimizer_equals_the_tables(name):
    """kernels.surfaces.surface_descent_of (one optimizer's descent, what a surface preset of a few compiles)
    and surface_descent (the table's, for many: engine.training.kernel_choice) take the same steps."""
    from tuilab.engine.training import kernel_choice

    land = make_landscape("rosenbrock")
    lr = REGISTRY[name].defaults["lr"] * 0.1
    paths = []
    try:
        for table in (False, True):
            kernel_choice.use_whole_table(table)
            got = descend(land, name, (-1.5, 2.0), 300, max_points=301, lr=lr, **_hyper(name))
            paths.append((got.path, got.f, got.steps_done, got.status))
    finally:
        kernel_choice.use_whole_table(False)
    own, whole = paths
    np.testing.assert_array_equal(own[0], whole[0])
    np.testing.assert_array_equal(own[1], whole[1])
    assert own[2:] == whole[2:]
