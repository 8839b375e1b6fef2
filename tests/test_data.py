"""IDX reading, the data-set search order and offline fallback, synthetic sets, splits, scaling."""

import gzip
import socket

import numpy as np
import pytest

from tuilab.engine.data import sets as data
from tuilab.engine.data.idx import read_idx, write_idx
from tuilab.errors import TuilabError


def make_image_set(folder, n_train=30, n_test=10, seed=0):
    """A tiny MNIST-shaped set (4x4 images) in IDX .gz files, as torchvision's raw folder has."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    write_idx(folder / "train-images-idx3-ubyte.gz", rng.integers(0, 256, (n_train, 4, 4), dtype=np.uint8))
    write_idx(folder / "train-labels-idx1-ubyte.gz", (np.arange(n_train) % 10).astype(np.uint8))
    write_idx(folder / "t10k-images-idx3-ubyte.gz", rng.integers(0, 256, (n_test, 4, 4), dtype=np.uint8))
    write_idx(folder / "t10k-labels-idx1-ubyte.gz", (np.arange(n_test) % 10).astype(np.uint8))
    return folder


def refused_url() -> str:
    """http://127.0.0.1:PORT where nothing listens: a connection there is refused at once."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def no_sources(tmp_path, monkeypatch):
    """Nothing on disk, no $TUILAB_DATA, and the only mirror refuses connections (as offline)."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("TUILAB_DATA", raising=False)
    monkeypatch.setenv("TUILAB_DATA_MIRROR", refused_url())
    monkeypatch.setattr(data, "SYSTEM_DATA", tmp_path / "system")
    return tmp_path


# ---- IDX ----

@pytest.mark.parametrize("name", ["a-idx3-ubyte", "a-idx3-ubyte.gz"])
@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.int32, np.float32, np.float64])
def test_idx_round_trip(tmp_path, name, dtype, rng):
    arr = (rng.standard_normal((3, 5, 2)) * 50).astype(dtype)
    write_idx(tmp_path / name, arr)
    back = read_idx(tmp_path / name)
    assert back.dtype == np.dtype(dtype) and np.array_equal(back, arr)


def test_idx_truncated_and_corrupt_files_say_so(tmp_path):
    arr = np.arange(60, dtype=np.uint8).reshape(3, 4, 5)
    write_idx(tmp_path / "ok-idx3-ubyte", arr)
    raw = (tmp_path / "ok-idx3-ubyte").read_bytes()
    cases = {
        "short-idx3-ubyte": (raw[:-7], "truncated"),
        "header-idx3-ubyte": (raw[:9], "truncated"),
        "long-idx3-ubyte": (raw + b"xx", "longer than its header"),
        "magic-idx3-ubyte": (b"\x1f\x8b" + raw[2:], "not an IDX file"),
        "type-idx3-ubyte": (raw[:2] + b"\x07" + raw[3:], "not an IDX file"),
        "bad.gz": (b"this is not gzip at all", "cannot read"),
        "cut.gz": (gzip.compress(raw)[:40], "cannot read"),
    }
    for name, (content, words) in cases.items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(TuilabError, match=words):
            read_idx(tmp_path / name)
    with pytest.raises(TuilabError, match="cannot read"):
        read_idx(tmp_path / "missing-idx3-ubyte")


def test_bundled_digits_are_the_uci_set():
    src = data.bundled_digits()
    assert src.X_train.shape == (1797, 64) and src.X_train.max() == 16 and src.X_train.min() == 0
    assert np.array_equal(np.bincount(src.y_train),
                          [178, 182, 177, 183, 181, 182, 181, 179, 174, 180])
    assert src.n_classes == 10 and src.origin == "bundled"


# ---- finding image sets ----

def test_search_order_data_dir_then_env_then_cache_then_system(no_sources, monkeypatch):
    tmp = no_sources
    places = {"dir": tmp / "d" / "mnist", "env": tmp / "e" / "mnist",
              "cache": tmp / "cache" / "tuilab" / "MNIST" / "raw", "system": tmp / "system" / "mnist"}
    for k, folder in enumerate(places.values()):
        make_image_set(folder, n_train=20 + k)  # a different size tells which was read
    monkeypatch.setenv("TUILAB_DATA", str(tmp / "e"))
    sizes = []
    for key in places:
        src, notice = data.load_source("mnist", data_dir=tmp / "d")
        assert notice is None and src.name == "mnist"
        sizes.append(len(src.X_train))
        for p in places[key].iterdir():
            p.unlink()
    assert sizes == [20, 21, 22, 23]


def test_a_missing_image_set_trains_on_fashion_mnist_where_it_is_on_disk(no_sources):
    """MNIST and KMNIST missing offline: Fashion-MNIST on disk (Debian's package) stands in, the same shape,
    rather than 8x8 digits a run finishes in a second; a preset's card says so before it starts."""
    from tuilab.app.summary import describe
    from tuilab.engine.config.presets import load_experiment

    system = no_sources / "system"
    assert "offline, the bundled digits" in dict(describe(load_experiment("deep-relu")))["data set"]
    make_image_set(system / "fashion-mnist", n_train=12)
    src, notice = data.load_source("kmnist")
    assert src.name == "fashion-mnist" and src.X_train.shape == (12, 4 * 4)
    assert "\n" not in notice and "kmnist" in notice and "using fashion-mnist from" in notice
    assert dict(describe(load_experiment("deep-relu")))["data set"] == \
        "mnist (unit); not on disk: fetched on first use; offline, fashion-mnist instead"
    make_image_set(system / "mnist", n_train=12)
    assert dict(describe(load_experiment("deep-relu")))["data set"] == "mnist (unit)"  # at hand: nothing to say
    src, notice = data.load_source("fashion-mnist")
    assert src.name == "fashion-mnist" and notice is None


def test_missing_set_falls_back_to_digits_with_one_line(no_sources):
    src, notice = data.load_source("kmnist")
    assert src.name == "digits"
    assert "\n" not in notice and "kmnist" in notice and "could not be fetched" in notice
    assert "could not connect" in notice and "bundled digits" in notice and "--data-dir" in notice
    with pytest.raises(TuilabError, match="kmnist: not found on disk and could not be fetched"):
        data.load_source("kmnist", strict=True)


def test_mismatched_image_and_label_counts(no_sources):
    folder = make_image_set(no_sources / "d" / "mnist")
    write_idx(folder / "train-labels-idx1-ubyte.gz", np.zeros(3, np.uint8))
    with pytest.raises(TuilabError, match="do not match"):
        data.load_source("mnist", data_dir=no_sources / "d")


# ---- synthetic sets, splits, scaling, targets ----

@pytest.mark.parametrize("name", ["spirals", "moons", "circles", "xor", "blobs", "sine"])
def test_synthetic_sets_are_deterministic(name):
    a = data.synthetic_source(name, 200, 0.1, seed=3)
    b = data.synthetic_source(name, 200, 0.1, seed=3)
    c = data.synthetic_source(name, 200, 0.1, seed=4)
    assert np.array_equal(a.X_train, b.X_train) and np.array_equal(a.y_train, b.y_train)
    assert not np.array_equal(a.X_train, c.X_train)
    if name != "sine":
        assert a.n_classes >= 2 and set(np.unique(a.y_train)) == set(range(a.n_classes))


def test_xor_without_noise_is_the_truth_table():
    src = data.synthetic_source("xor", 4, 0.0, 0)
    assert src.X_train.tolist() == [[0, 0], [0, 1], [1, 0], [1, 1]]
    assert src.y_train.tolist() == [0, 1, 1, 0]


def test_splits_are_seeded_and_disjoint():
    src = data.bundled_digits()
    p = data.prepare(src, val_fraction=0.1, test_fraction=0.2, normalize="none", seed=5, dtype=np.float64)
    q = data.prepare(src, val_fraction=0.1, test_fraction=0.2, normalize="none", seed=5, dtype=np.float64)
    assert len(p.X_test) == round(1797 * 0.2) and len(p.X_val) == round((1797 - 359) * 0.1)
    assert len(p.X_train) + len(p.X_val) + len(p.X_test) == 1797
    assert np.array_equal(p.X_train, q.X_train)
    rows = {tuple(r) for r in p.X_train} & {tuple(r) for r in p.X_test}
    # digits has a few duplicate images; disjoint indices leave at most those in common
    assert len(rows) < 5
    lim = data.prepare(src, train_samples=100, seed=5)
    assert len(lim.X_train) == 100


def test_normalizations():
    src = data.bundled_digits()
    unit = data.prepare(src, normalize="unit", dtype=np.float64)
    assert unit.X_train.min() == 0 and unit.X_train.max() == 1
    std = data.prepare(src, normalize="standardize", dtype=np.float64)
    m, s = std.X_train.mean(axis=0), std.X_train.std(axis=0)
    varying = s > 0
    assert np.allclose(m, 0, atol=1e-12) and np.allclose(s[varying], 1)
    assert not np.allclose(std.X_test.mean(axis=0), 0, atol=1e-3)  # test uses the training statistics
    per = data.prepare(src, normalize="per_sample", dtype=np.float64)
    assert np.allclose(per.X_test.mean(axis=1), 0) and np.allclose(per.X_test.std(axis=1), 1)
    none = data.prepare(src, normalize="none", dtype=np.float64)
    assert none.X_train.max() == 16
    moons = data.prepare(data.synthetic_source("moons", 300, 0.1, 0), normalize="unit", dtype=np.float64)
    assert moons.X_train.min() == 0 and moons.X_train.max() == 1


def test_targets_one_hot_or_value():
    src = data.bundled_digits()
    p = data.prepare(src, dtype=np.float32)
    assert p.Y_train.shape == (len(p.X_train), 10) and p.Y_train.dtype == np.float32
    assert np.array_equal(p.Y_train.argmax(axis=1), p.labels_train)
    v = data.prepare(src, target="value", dtype=np.float64)
    assert v.Y_train.shape == (len(v.X_train), 1) and np.allclose(v.Y_train[:, 0], v.labels_train / 10)
    s = data.prepare(data.synthetic_source("sine", 100, 0.0, 0), normalize="none", dtype=np.float64)
    assert s.n_classes == 0 and s.labels_train is None and not s.classifies
    assert np.allclose(s.Y_train, np.sin(2 * np.pi * s.X_train), atol=1e-12)


def test_unknown_names():
    with pytest.raises(TuilabError, match="did you mean 'mnist'|Did you mean 'mnist'"):
        data.load_source("mnsit")
    with pytest.raises(TuilabError, match="normalize"):
        data.prepare(data.bundled_digits(), normalize="scale")


@pytest.mark.skipif(not (data.SYSTEM_DATA / "fashion-mnist").is_dir(),
                    reason="dataset-fashion-mnist is not installed (apt-get install dataset-fashion-mnist)")
def test_real_fashion_mnist_from_the_system_folder(monkeypatch, tmp_path):
    monkeypatch.delenv("TUILAB_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    src, notice = data.load_source("fashion-mnist", download=False)
    assert notice is None and src.X_train.shape == (60000, 784) and src.X_test.shape == (10000, 784)
    assert np.array_equal(np.bincount(src.y_train), [6000] * 10)
