"""Runs that train at the same time in one process get the results each gets alone."""

import threading

import numpy as np
import pytest

from tests.test_trainer import Recorder, experiment
from tuilab.engine.events import EpochEnd
from tuilab.engine.nn.model import MLP
from tuilab.engine.nn.optim import Optimizer
from tuilab.engine.training.fit import steps_per_epoch, train_steps
from tuilab.engine.training.runner import run_network


def _train(net, X, Y, name, seed, epochs=3, bs=16):
    theta = net.init("kaiming_uniform", seed=seed)
    opt = Optimizer(name, theta.size, net.dtype)
    rng = np.random.default_rng(seed)
    for _ in range(epochs):
        order = rng.permutation(len(X))
        spe = steps_per_epoch(len(X), bs)
        for first in range(0, spe, 7):  # chunks of 7 steps, as a Trainer's are many
            n = min(7, spe - first)
            train_steps(net, opt, theta, X, Y, order, first, np.full(n, 1e-3), bs, np.zeros((n, 2)))
    return theta, opt.state, opt.scal


@pytest.mark.parametrize("path", [None, "split 1/2", "BLAS x2", "gather ahead"])
def test_two_trainings_at_once_match_each_alone(on_path, monkeypatch, path):
    if path is None:
        on_path("1 thread")
        monkeypatch.delenv("TUILAB_PATH")  # the path the timing chooses for this shape
    else:
        on_path(path)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(640, 96)).astype(np.float32)
    Y = np.eye(10, dtype=np.float32)[rng.integers(0, 10, 640)]
    net = MLP([96, 40, 10], "tanh")
    alone = [_train(net, X, Y, "adam", 1), _train(net, X, Y, "nesterov", 2)]
    together = [None, None]

    def one(k, name, seed):
        together[k] = _train(net, X, Y, name, seed)

    threads = [threading.Thread(target=one, args=(0, "adam", 1)), threading.Thread(target=one, args=(1, "nesterov", 2))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for a, b in zip(alone, together, strict=True):
        for x, y in zip(a, b, strict=True):
            np.testing.assert_array_equal(x, y)


def test_two_experiments_at_once_match_each_alone():
    """As the dashboard runs them: two experiments, each racing its runs, in two threads."""
    exps = [experiment(runs=[{"label": "a"}, {"label": "b", "optimizer": {"name": "sgd", "lr": 0.1}}],
                       train={"epochs": 3}),
            experiment(runs=[{"label": "c", "optimizer": {"name": "rmsprop", "lr": 0.002}}], train={"epochs": 3})]
    alone = [Recorder(), Recorder()]
    for exp, rec in zip(exps, alone, strict=True):
        run_network(exp, rec, interleave=True)
    together = [Recorder(), Recorder()]
    threads = [threading.Thread(target=run_network, args=(exp, rec), kwargs={"interleave": True})
               for exp, rec in zip(exps, together, strict=True)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    key = lambda rec: sorted((e.run, e.epoch, e.metrics["train_loss"], e.metrics["val_loss"])  # noqa: E731
                             for e in rec.of(EpochEnd))
    for a, b in zip(alone, together, strict=True):
        assert len(key(a)) > 0 and key(a) == key(b)
