"""A network's own loss landscape (issue 30): the plane's losses against the network's own forward pass, PCA
against NumPy's SVD, the runs plane through θ0 and both ends, filter normalisation, the projection, the
snapshots a run keeps (thinning, records, resume, other processes) and `tuilab landscape` itself."""

import math
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tuilab.engine.nn import landscape as L
from tuilab.engine.nn.model import MLP
from tuilab.engine.records import snapshots


def _net_and_data(dtype="float64", sizes=(12, 9, 7, 4), act="tanh", loss="cross_entropy", n=300):
    rng = np.random.default_rng(0)
    out = "softmax" if loss == "cross_entropy" else "identity"
    net = MLP(list(sizes), act, out, loss, dtype)
    X = rng.normal(size=(n, sizes[0])).astype(dtype)
    Y = np.eye(sizes[-1], dtype=dtype)[rng.integers(0, sizes[-1], n)] if loss == "cross_entropy" \
        else rng.normal(size=(n, sizes[-1])).astype(dtype)
    return net, X, Y, rng


@pytest.mark.parametrize("dtype,loss,sizes", [("float64", "cross_entropy", (12, 9, 7, 4)),
                                              ("float32", "cross_entropy", (12, 9, 7, 4)),
                                              ("float64", "squared_error", (5, 3)),  # no hidden layer
                                              ("float64", "squared_error", (6, 8, 2))])
def test_the_planes_losses_are_the_networks_own_forward_pass(dtype, loss, sizes):
    net, X, Y, rng = _net_and_data(dtype, sizes, loss=loss)
    theta = net.init("xavier_normal", "zeros", 1).astype(np.float64)
    plane = L.Plane("test", theta, rng.normal(size=theta.shape) * 0.1, rng.normal(size=theta.shape) * 0.1)
    coords = np.array([[0.0, 0.0], [1.0, -0.5], [-2.0, 3.0], [0.25, 0.125]])
    got = L.losses_on_plane(net, plane, coords, X, Y, threads=2)
    tol = 1e-10 if dtype == "float64" else 2e-5
    for (a, b), value in zip(coords, got, strict=True):
        point = np.ascontiguousarray(theta + a * plane.d1 + b * plane.d2, net.dtype)
        assert value == pytest.approx(net.evaluate(point, X, Y)[0], rel=tol)


def test_pca_directions_are_numpys_svd_of_the_snapshots():
    rng = np.random.default_rng(3)
    snaps = np.cumsum(rng.normal(size=(20, 50)) * np.linspace(3, 0.1, 50), axis=0)  # a drifting path
    plane = L.pca_plane(snaps)
    D = snaps - snaps[-1]
    _, s, Vt = np.linalg.svd(D, full_matrices=False)
    for got, want in ((plane.d1, Vt[0]), (plane.d2, Vt[1])):
        assert abs(got @ want) == pytest.approx(1.0, abs=1e-9)  # the same direction, up to its sign
    assert np.allclose(plane.explained, s**2 / (s**2).sum())
    assert np.array_equal(plane.origin, snaps[-1])
    with pytest.raises(Exception, match="3 or more snapshots"):
        L.pca_plane(snaps[:2])


def test_the_runs_plane_holds_the_start_and_both_ends():
    rng = np.random.default_rng(5)
    theta0, a, b = rng.normal(size=(3, 40))
    plane = L.runs_plane(theta0, a, b)
    coords, off = L.project(plane, np.stack([theta0, a, b]))
    assert np.allclose(coords, [[0, 0], [1, 0], [0, 1]], atol=1e-12) and np.allclose(off, 0, atol=1e-12)
    with pytest.raises(Exception, match="one line"):
        L.runs_plane(theta0, a, theta0 + 2 * (a - theta0))


def test_random_directions_are_filter_normalised_and_seeded():
    net, _, _, _ = _net_and_data()
    theta = net.init("xavier_normal", "zeros", 2).astype(np.float64) * 3
    plane = L.random_plane(net.layout, theta, seed=4)
    for d in (plane.d1, plane.d2):
        for l in range(net.layout.n_layers):
            W, _ = net.layout.layer(theta, l)
            D, bias = net.layout.layer(d, l)
            assert np.allclose(np.linalg.norm(D, axis=1), np.linalg.norm(W, axis=1))  # each unit's row
            assert not bias.any()  # biases stay where they are
    again = L.random_plane(net.layout, theta, seed=4)
    assert np.array_equal(plane.d1, again.d1) and not np.array_equal(plane.d1, L.random_plane(net.layout, theta, 5).d1)


@settings(max_examples=40, deadline=None)
@given(st.floats(-5, 5), st.floats(-5, 5), st.floats(0, 3))
def test_a_point_projects_to_its_coordinates_and_its_distance_off_the_plane(a, b, away):
    rng = np.random.default_rng(7)
    origin, d1, d2, other = rng.normal(size=(4, 30))
    plane = L.Plane("test", origin, d1, d2)
    normal = other - np.linalg.lstsq(np.stack([d1, d2]).T, other, rcond=None)[0] @ np.stack([d1, d2])
    normal /= np.linalg.norm(normal)
    (got,), (off,) = L.project(plane, (origin + a * d1 + b * d2 + away * normal)[None])
    assert got == pytest.approx([a, b], abs=1e-9) and off == pytest.approx(away, abs=1e-9)


def test_snapshots_are_thinned_evenly_the_start_and_the_last_kept(tmp_path):
    for most, epochs in ((8, 100), (64, 1000), (64, 30), (3, 7)):
        keeper = snapshots.SnapshotKeeper(most, tmp_path / f"r{most}-{epochs}")
        for e in range(epochs + 1):
            keeper.offer(e, np.full(4, e, np.float64))
        got, theta = keeper.arrays()
        assert len(got) <= most and got[0] == 0 and got[-1] == epochs
        inner = got[1:-1] if got[-1] % keeper.stride else got[1:]
        assert np.all(np.diff(np.concatenate([[0], inner])) == keeper.stride)  # evenly spread
        assert len(got) >= min(most, epochs + 1) // 2  # thinned no more than by half
        assert np.array_equal(theta[:, 0], got) and theta.dtype == np.float32
        on_disk = sorted(int(f.stem) for f in (tmp_path / f"r{most}-{epochs}" / snapshots.FOLDER).glob("*.npy"))
        assert on_disk == sorted(keeper.kept)  # each kept one on disk, the dropped ones gone
        keeper.finish()
        e2, t2 = snapshots.load(tmp_path / f"r{most}-{epochs}")
        assert np.array_equal(e2, got) and np.array_equal(t2, theta)
        assert not (tmp_path / f"r{most}-{epochs}" / snapshots.FOLDER).exists()
    assert snapshots.most_kept(64, 1_600_000) == 10 and snapshots.most_kept(64, 1000) == 64
    assert snapshots.most_kept(0, 1000) == 0 and snapshots.most_kept(64, 10**9) == 2


def test_snapshots_read_while_the_run_thins_or_gathers_them(tmp_path, monkeypatch):
    """The dashboard's landscape reads a training run's snapshot files while the run thins them (deletes some)
    and at its end gathers them into snapshots.npz: a file gone since the listing is skipped, not an error
    ("a snapshot is unreadable (FileNotFoundError)" failed the dashboard's landscape now and then)."""
    keeper = snapshots.SnapshotKeeper(8, tmp_path / "run")
    for e in range(6):
        keeper.offer(e, np.full(4, e, np.float64))
    real_load = np.load
    thinned = []

    def thinning_meanwhile(f, *args, **kw):
        if not thinned:  # the keeper drops epoch 3 as the reader reaches epoch 0
            thinned.append(3)
            (tmp_path / "run" / snapshots.FOLDER / "3.npy").unlink()
        return real_load(f, *args, **kw)

    monkeypatch.setattr(snapshots.np, "load", thinning_meanwhile)
    epochs, theta = snapshots.load(tmp_path / "run")
    assert epochs.tolist() == [0, 1, 2, 4, 5] and theta[:, 0].tolist() == [0, 1, 2, 4, 5]
    monkeypatch.setattr(snapshots.np, "load", real_load)

    gathered = tmp_path / "gathered"  # the run ends between the reader's first look and its reading the files
    keeper = snapshots.SnapshotKeeper(8, gathered)
    for e in range(3):
        keeper.offer(e, np.full(4, e, np.float64))

    def finished_meanwhile(f, *args, **kw):
        if str(f).endswith(".npy"):
            keeper.finish()
            raise FileNotFoundError(f)
        return real_load(f, *args, **kw)

    monkeypatch.setattr(snapshots.np, "load", finished_meanwhile)
    epochs, theta = snapshots.load(gathered)
    assert epochs.tolist() == [0, 1, 2] and theta[:, 0].tolist() == [0, 1, 2]


def tuilab(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "tuilab", *args], capture_output=True, text=True, timeout=600,
                          cwd=cwd)


SPIRALS = ["--preset", "spirals", "--set", "train.epochs=40", "--set", "data.n_samples=600"]


def test_a_run_keeps_its_snapshots_and_tuilab_landscape_draws_its_path(tmp_path):
    out = tmp_path / "s"
    r = tuilab(*SPIRALS, "--out", str(out), "headless")
    assert r.returncode == 0, r.stderr
    run = next(out.glob("*/params.npz")).parent
    epochs, theta = snapshots.load(run)
    assert epochs[0] == 0 and epochs[-1] == 40 and len(epochs) <= 64 and not (run / snapshots.FOLDER).exists()
    with np.load(run / "params.npz") as z:
        assert np.array_equal(theta[-1], z["theta"].astype(np.float32))  # the last is where it ended
    r = tuilab("landscape", str(out), "--grid", "9", "--rows", "300")
    assert r.returncode == 0, r.stderr
    assert "PCA of the path: the axes explain" in r.stdout and "o start  * end" in r.stdout
    assert "off plane" in r.stdout and "true loss" in r.stdout
    with np.load(run / "landscape.npz") as z:
        assert z["loss"].shape == (9, 9) and z["path"].shape == (len(epochs), 2)
        assert len(z["explained"]) >= 2 and z["explained"][:2].sum() <= 1 + 1e-9
        assert np.allclose(z["path"][-1], 0)  # centred on the last snapshot
        assert z["true_loss"][-1] == pytest.approx(z["plane_loss"][-1], rel=1e-5)  # the end lies on the plane
        a, b, loss = z["a"], z["b"], z["loss"]
    # the value at the plane's origin is the network's loss at θ on the same rows
    from tuilab.engine.nn.model import MLP as Net
    from tuilab.landscape import _net_and_rows, load_run

    experiment, index = load_run(out, None)
    net, X, Y, _ = _net_and_rows(experiment.runs[index], 300)
    assert isinstance(net, Net)
    on_origin = L.losses_on_plane(net, L.Plane("pca", theta[-1].astype(np.float64), np.ones(len(theta[-1])),
                                               np.ones(len(theta[-1]))), np.zeros((1, 2)), X, Y)[0]
    assert on_origin == pytest.approx(net.evaluate(np.ascontiguousarray(theta[-1], net.dtype), X, Y)[0], rel=1e-6)
    assert a[0] < 0 < a[-1] and b[0] < 0 < b[-1] and np.isfinite(loss).all()
    r = tuilab("landscape", str(out), "--directions", "random", "--grid", "5", "--rows", "100", "--seed", "3")
    assert r.returncode == 0 and "filter-normalised random directions" in r.stdout, r.stderr


def test_the_runs_plane_draws_every_run_that_shared_the_start(tmp_path):
    out = tmp_path / "z"
    r = tuilab(*SPIRALS, "--sweep", 'optimizer.name=["sgd", "adam", "rmsprop"]', "--set", "optimizer.lr=0.01",
               "--out", str(out), "headless")
    assert r.returncode == 0, r.stderr
    r = tuilab("landscape", str(out), "--directions", "runs", "--grid", "7", "--rows", "200")
    assert r.returncode == 0, r.stderr
    assert "through the runs' start (0, 0)" in r.stdout
    assert r.stdout.count("sgd") >= 1 and r.stdout.count("rmsprop") >= 1  # every run in the legend


def test_a_run_without_snapshots_says_why_in_one_line(tmp_path):
    out = tmp_path / "n"
    r = tuilab(*SPIRALS, "--set", "train.snapshots=0", "--out", str(out), "headless")
    assert r.returncode == 0, r.stderr
    assert not list(out.glob("*/snapshots*"))
    r = tuilab("landscape", str(out))
    assert r.returncode == 2 and r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "kept no parameter snapshots" in lines[0] and "train it again" in lines[0]
    r = tuilab("report", str(out))  # nothing else minds
    assert r.returncode == 0, r.stderr
    r = tuilab("landscape", str(out), "--run", "nope")
    assert r.returncode == 2 and "no run 'nope'" in r.stderr


@pytest.mark.parametrize("jobs", [1, 2])
def test_snapshots_survive_a_resume_and_other_processes(tmp_path, jobs):
    """A run stopped half way (its Ctrl+C) and resumed keeps the same snapshots as one never stopped: the
    kept ones up to the checkpoint come back from the records, the rest are trained again bit for bit."""
    import os
    import signal
    import time

    env = {**os.environ, "TUILAB_PATH": "1 thread"}
    args = [*SPIRALS[:2], "--set", "train.epochs=3000", "--set", "data.n_samples=600", "--jobs", str(jobs)]
    ref = tmp_path / "ref"
    r = subprocess.run([sys.executable, "-m", "tuilab", *args, "--out", str(ref), "headless"], env=env,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    out = tmp_path / "cut"
    p = subprocess.Popen([sys.executable, "-m", "tuilab", *args, "--out", str(out), "headless"], env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    run = None
    for _ in range(600):  # until some snapshots are on disk, then a kill, as a crash would
        time.sleep(0.05)
        kept = list(out.glob(f"*/{snapshots.FOLDER}/*.npy"))
        if len(kept) >= 5:
            run = kept[0].parent.parent
            break
    os.killpg(p.pid, signal.SIGKILL)
    p.wait(timeout=30)
    assert run is not None, "no snapshots appeared while it trained"
    if (run / "params.npz").exists():
        pytest.skip("the run finished before the kill")
    midway, _ = snapshots.load(run)  # a killed run's snapshots so far can be read (tuilab landscape does)
    assert midway[0] == 0
    r = subprocess.run([sys.executable, "-m", "tuilab", "resume", str(out), "--jobs", str(jobs)], env=env,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    want_e, want_t = snapshots.load(next(ref.glob("*/params.npz")).parent)
    got_e, got_t = snapshots.load(run)
    assert np.array_equal(got_e, want_e) and np.array_equal(got_t, want_t)
    assert math.isfinite(float(got_t[-1].sum()))
