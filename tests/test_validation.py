"""Bad input raises one clear TuilabError naming the value and what is allowed, before any kernel."""

import numpy as np
import pytest

from tuilab.engine.nn.model import MLP
from tuilab.engine.nn.optim import Optimizer
from tuilab.engine.training.fit import train_steps
from tuilab.errors import TuilabError


@pytest.mark.parametrize("kwargs,message", [
    (dict(name="adamm"), r"unknown optimizer 'adamm'.*Did you mean 'adam'"),
    (dict(name="adam", lr=0.0), r"adam: lr must be a number > 0, got 0.0"),
    (dict(name="sgd", lr=-0.1), r"sgd: lr must be a number > 0, got -0.1"),
    (dict(name="adam", lr=float("nan")), r"lr must be a number > 0"),
    (dict(name="adam", lr="fast"), r"lr must be a number > 0, got 'fast'"),
    (dict(name="adam", betas=(0.9, 1.0)), r"betas\[1\] must be a number in \[0, 1\), got 1.0"),
    (dict(name="adam", betas=(-0.1, 0.9)), r"betas\[0\] must be a number in \[0, 1\)"),
    (dict(name="adam", betas=0.9), r"betas must be a pair of numbers"),
    (dict(name="sgd", momentum=1.2), r"momentum must be a number in \[0, 1\)"),
    (dict(name="sgd", nesterov=True), r"nesterov needs momentum > 0 and dampening = 0"),
    (dict(name="adam", momentum=0.9), r"unknown hyperparameter for adam: 'momentum'"),
    (dict(name="adam", amsgrad="yes"), r"amsgrad must be true or false"),
    (dict(name="adamw", decoupled_weight_decay=False), r"fixed to True"),
    (dict(name="demon_adam"), r"Demon needs demon_steps"),
    (dict(name="adam", weight_decay=-1), r"weight_decay must be a number >= 0"),
    (dict(name="adafactor", eps=("auto", 1e-3)), r'adafactor: eps\[0\] must be a number >= 0 or "none", got .auto.'),
    (dict(name="adafactor", eps=1e-3), r"adafactor: eps must be a pair of numbers"),
    (dict(name="adafactor", beta2_decay=0.5), r"beta2_decay must be a number <= 0, got 0.5"),
    (dict(name="adafactor", d=0.5), r"d must be a number >= 1, got 0.5"),
    (dict(name="adam", eps="none"), r"adam: eps must be a number >= 0, got 'none'"),
    (dict(name="muon", rest={"name": "lbfgs"}), r"muon: rest = 'lbfgs' works per tensor or re-evaluates"),
    (dict(name="muon", rest={"name": "adamw", "maximize": True}), r"muon: rest cannot take maximize"),
    (dict(name="muon", rest="adamw"), r"muon: rest must be a table naming the optimizer for the biases"),
    (dict(name="muon", rest={"name": "adamw", "lr": -1}), r"muon: rest: adamw: lr must be a number > 0"),
    (dict(name="muon", adjust_lr_fn="match"), r"adjust_lr_fn"),
    (dict(name="muon", ns_steps=2.5), r"ns_steps must be a whole number from 0 to 99"),
    (dict(name="muon", ns_coefficients=(1.0, 2.0)), r"ns_coefficients must be 3 numbers"),
    (dict(name="lbfgs", line_search_fn="wolfe"), r"line_search_fn"),
    (dict(name="lbfgs", history_size=0), r"history_size must be a whole number >= 1"),
    (dict(name="lbfgs", max_eval="lots"), r'max_eval must be a whole number >= 1 or "none"'),
])
def test_optimizer_bad_input(kwargs, message):
    name = kwargs.pop("name")
    with pytest.raises(TuilabError, match=message):
        Optimizer(name, 4, np.float64, **kwargs)


@pytest.mark.parametrize("args,message", [
    (dict(sizes=[4, 0, 2]), r"layer sizes must be whole numbers >= 1, got 0"),
    (dict(sizes=[4]), r"at least input and output sizes"),
    (dict(sizes=[4, 2.5, 2]), r"whole numbers >= 1, got 2.5"),
    (dict(sizes=[4, 3, 2], activation="relux"), r"unknown activation 'relux'.*'relu'"),
    (dict(sizes=[4, 3, 2], activation="softmax"), r"unknown activation 'softmax'"),
    (dict(sizes=[4, 3, 2], output="sigmoid"), r"'cross_entropy' needs output 'softmax'"),
    (dict(sizes=[4, 3, 2], loss="mse"), r"unknown loss 'mse'"),
    (dict(sizes=[4, 3, 2], dtype="float16"), r"unknown dtype 'float16'"),
    (dict(sizes=[4, 3, 3, 2], activation=["relu"]), r"1 activations given for 2 hidden layers"),
])
def test_network_bad_input(args, message):
    with pytest.raises(TuilabError, match=message):
        MLP(**args)


def test_initialiser_bad_name():
    with pytest.raises(TuilabError, match=r"unknown initialiser 'kaiming'.*one of"):
        MLP([3, 2]).init("kaiming")
    with pytest.raises(TuilabError, match=r"unknown bias initialiser 'ones'"):
        MLP([3, 2]).init(bias="ones")


def test_mismatched_shapes_are_caught_before_the_kernel():
    net = MLP([4, 3, 2], dtype="float64")
    theta = net.init()
    with pytest.raises(TuilabError, match=r"inputs must be a float64 array \(n, 4\), got float64 \(5, 3\)"):
        net.loss_and_grad(theta, np.zeros((5, 3)), np.zeros((5, 2)))
    with pytest.raises(TuilabError, match=r"targets must be a float64 array \(5, 2\)"):
        net.loss_and_grad(theta, np.zeros((5, 4)), np.zeros((5, 3)))
    with pytest.raises(TuilabError, match=r"theta must be a float64 vector of 23 values"):
        net.loss_and_grad(theta[:-1], np.zeros((5, 4)), np.zeros((5, 2)))
    with pytest.raises(TuilabError, match=r"theta must be a contiguous, writeable array"):
        net.loss_and_grad(np.zeros(46)[::2], np.zeros((5, 4)), np.zeros((5, 2)))
    with pytest.raises(TuilabError, match=r"inputs must be a float64 array.*got float32"):
        net.predict(theta, np.zeros((5, 4), np.float32))
    opt = Optimizer("adam", theta.size, np.float64)
    with pytest.raises(TuilabError, match=r"grad must be a float64 vector of 23 values"):
        opt.step(theta, np.zeros(22))
    with pytest.raises(TuilabError, match=r"another network"):
        train_steps(net, Optimizer("adam", 7, np.float64), theta, np.zeros((5, 4)),
                    np.zeros((5, 2)), np.arange(5), 0, np.full(1, 0.1), 5)
    with pytest.raises(TuilabError, match=r"run past the 5 samples"):
        train_steps(net, opt, theta, np.zeros((5, 4)), np.zeros((5, 2)), np.arange(5), 0,
                    np.full(2, 0.1), 5)


def test_train_steps_checks_row_numbers_and_the_norm_buffer():
    """The kernels have no bounds checks: a row number outside X or a grad_sq of the wrong shape would
    read or write outside the arrays, so the checked face refuses them."""
    net = MLP([4, 3, 2], dtype="float64")
    theta = net.init()
    opt = Optimizer("sgd", theta.size, np.float64)
    X, Y = np.zeros((5, 4)), np.zeros((5, 2))
    for order in (np.array([0, 1, 2, 3, 5]), np.array([0, 1, -1, 3, 4])):
        with pytest.raises(TuilabError, match=r"order holds row numbers outside 0\.\.4"):
            train_steps(net, opt, theta, X, Y, order, 0, np.full(1, 0.1), 5)
    with pytest.raises(TuilabError, match=r"order has 6 entries for 5 rows"):
        train_steps(net, opt, theta, X, Y, np.array([0, 1, 2, 3, 4, 0]), 0, np.full(1, 0.1), 5)
    with pytest.raises(TuilabError, match=r"grad_sq must be float64 of shape \(2, 2\), or \(2, 6\) with the "
                                          r"internals; got float64 \(1, 2\)"):
        train_steps(net, opt, theta, X, Y, np.arange(5), 0, np.full(2, 0.1), 2, np.zeros((1, 2)))
    with pytest.raises(TuilabError, match=r"grad_sq must be float64 of shape \(1, 2\), .*got float32"):
        train_steps(net, opt, theta, X, Y, np.arange(5), 0, np.full(1, 0.1), 5, np.zeros((1, 2), np.float32))
    assert opt.steps_taken == 0  # nothing ran


@pytest.mark.parametrize("name", ["muon", "adafactor", "lbfgs", "asgd", "rprop", "adam"])
def test_every_hyperparameter_reads_back_from_the_text_the_edit_form_shows(name):
    """The edit form shows each hyperparameter as text and reads it back: words ('original', 'none'), pairs
    with a word in them (Adafactor's ["none", 0.001]) and tables (Muon's rest) come back as they were."""
    from tuilab.app.edit_form import field_text, parse_field
    from tuilab.engine.nn.optim import resolve_hyperparameters

    shown = resolve_hyperparameters(name, {})
    assert resolve_hyperparameters(name, {k: parse_field(field_text(v)) for k, v in shown.items()}) == shown
