"""Data sets: IDX image sets found on disk (or fetched), the bundled digits, synthetic sets.

`load_source` finds the raw arrays (and says in one line when it had to fall back to
the bundled digits); `prepare` splits, normalises and builds the targets the network
trains on. Both are deterministic for a given seed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tuilab.engine.data import synthetic
from tuilab.engine.data.idx import read_idx
from tuilab.errors import TuilabError, choice_error

MIRROR_HINT = "TUILAB_DATA_MIRROR=URL (or --data-mirror URL)"
# name -> torchvision class (and its folder under a torchvision root, still searched)
IMAGE_SETS = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST", "kmnist": "KMNIST"}
BUNDLED = "digits"
# what each label means, where it is not the digit itself (the data sets' own papers' names)
CLASS_NAMES = {
    "fashion-mnist": ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                      "Ankle boot"),
    "kmnist": ("o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"),
}
CSV = "csv"  # your own file: [data] path (and label), or --data FILE.csv
DATASETS = (*IMAGE_SETS, BUNDLED, *synthetic.CLASSIFICATION, *synthetic.REGRESSION, CSV)
NORMALIZE = ("unit", "standardize", "per_sample", "none")
TARGETS = ("classes", "value")
SYSTEM_DATA = Path("/usr/share/datasets")  # Debian's dataset-* packages install here
_PARTS = {"train_images": ("train", "images", 3), "train_labels": ("train", "labels", 1),
          "test_images": ("t10k", "images", 3), "test_labels": ("t10k", "labels", 1)}


@dataclass
class Source:
    """A data set's raw arrays before any split or scaling."""

    name: str
    X_train: np.ndarray  # (n, features), any numeric dtype
    y_train: np.ndarray  # class ids (ints) or, for regression sets, (n, 1) floats
    X_test: np.ndarray | None
    y_test: np.ndarray | None
    n_classes: int  # 0 for a regression set
    origin: str  # where it came from: a folder, "bundled", "synthetic"
    pixel_max: float | None = None  # the value that "unit" scaling maps to 1 (images)
    image_shape: tuple = ()

    @property
    def is_regression_set(self) -> bool:
        return self.n_classes == 0


@dataclass
class Prepared:
    """What the Trainer uses: float arrays in the network's dtype, 2-D targets, and labels."""

    name: str
    origin: str
    X_train: np.ndarray
    Y_train: np.ndarray
    labels_train: np.ndarray | None
    X_val: np.ndarray
    Y_val: np.ndarray
    labels_val: np.ndarray | None
    X_test: np.ndarray
    Y_test: np.ndarray
    labels_test: np.ndarray | None
    n_classes: int
    target: str
    notice: str | None = None
    normalize: str = "none"  # how the inputs were scaled (NORMALIZE), with shift and scale where affine:
    shift: np.ndarray | None = None  # inputs = (data - shift) / scale, per feature, training statistics
    scale: np.ndarray | None = None

    def to_inputs(self, raw: np.ndarray) -> np.ndarray:
        """Points in the data's own units, scaled as the training inputs were (a decision map's grid)."""
        raw = np.asarray(raw, np.float64)
        if self.normalize == "per_sample":
            out = raw - raw.mean(axis=1, keepdims=True)
            std = out.std(axis=1, keepdims=True)
            return out / np.where(std > 0, std, 1.0)
        return raw if self.shift is None else (raw - self.shift) / self.scale

    def to_data(self, X: np.ndarray) -> np.ndarray:
        """The inputs back in the data's own units (not for per-sample normalising, which cannot be undone)."""
        X = np.asarray(X, np.float64)
        return X if self.shift is None else X * self.scale + self.shift

    @property
    def n_inputs(self) -> int:
        return int(self.X_train.shape[1])

    @property
    def n_outputs(self) -> int:
        return int(self.Y_train.shape[1])

    @property
    def classifies(self) -> bool:
        """Whether accuracy means something: class targets, or a value standing for a class."""
        return self.n_classes > 0


def cache_dir() -> Path:
    """The user cache for downloaded data sets."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "tuilab"


def search_roots(data_dir=None) -> list[Path]:
    """Where image sets are looked for, in order: --data-dir, $TUILAB_DATA, the cache, the system."""
    roots = []
    if data_dir:
        roots.append(Path(data_dir).expanduser())
    if os.environ.get("TUILAB_DATA"):
        roots.append(Path(os.environ["TUILAB_DATA"]).expanduser())
    roots += [cache_dir(), SYSTEM_DATA]
    return roots


def _find_part(folder: Path, prefix: str, kind: str, dims: int) -> Path | None:
    for sep in ("-", "."):
        for suffix in (".gz", ""):
            p = folder / f"{prefix}-{kind}{sep}idx{dims}-ubyte{suffix}"
            if p.is_file():
                return p
    return None


def find_image_set(name: str, roots) -> tuple[dict | None, list[Path]]:
    """The four IDX files of `name` in the first folder that has them all, and the folders searched."""
    searched = []
    for root in roots:
        for folder in (root / name, root / IMAGE_SETS[name] / "raw"):
            searched.append(folder)
            parts = {key: _find_part(folder, *spec) for key, spec in _PARTS.items()}
            if all(parts.values()):
                return parts, searched
    return None, searched


def _image_source(name: str, parts: dict) -> Source:
    Xtr, ytr = read_idx(parts["train_images"]), read_idx(parts["train_labels"])
    Xte, yte = read_idx(parts["test_images"]), read_idx(parts["test_labels"])
    for X, y, what in ((Xtr, ytr, "train"), (Xte, yte, "test")):
        if X.ndim != 3 or y.ndim != 1 or len(X) != len(y):
            raise TuilabError(
                f"{name}: the {what} images {X.shape} and labels {y.shape} do not match; re-download them")
    folder = str(parts["train_images"].parent)
    n_classes = int(max(ytr.max(), yte.max())) + 1
    return Source(name, Xtr.reshape(len(Xtr), -1), ytr.astype(np.int64), Xte.reshape(len(Xte), -1),
                  yte.astype(np.int64), n_classes, folder, 255.0, Xtr.shape[1:])


def bundled_digits() -> Source:
    """The UCI hand-written digits shipped inside the package (8x8, values 0..16)."""
    here = Path(__file__).resolve().parents[2] / "data"  # tuilab/data, beside engine/
    X = read_idx(here / "digits-images-idx3-ubyte.gz")
    y = read_idx(here / "digits-labels-idx1-ubyte.gz").astype(np.int64)
    return Source(BUNDLED, X.reshape(len(X), -1), y, None, None, 10, "bundled", 16.0, X.shape[1:])


def synthetic_source(name: str, n_samples: int, noise: float, seed: int, classes: int | None = None) -> Source:
    rng = np.random.default_rng(seed)
    if name in synthetic.REGRESSION:
        X, t = synthetic.REGRESSION[name](n_samples, noise, rng)
        return Source(name, X, t, None, None, 0, "synthetic")
    if classes is not None and name not in synthetic.MANY_CLASSES:
        raise TuilabError(f"data set {name!r} has its own classes; data.classes is for "
                          f"{' and '.join(synthetic.MANY_CLASSES)}")
    make = synthetic.CLASSIFICATION[name]
    X, y = make(n_samples, noise, rng) if classes is None else make(n_samples, noise, rng, classes=classes)
    return Source(name, X, y.astype(np.int64), None, None, int(y.max()) + 1, "synthetic")


# 28x28 grey images in ten classes, as MNIST and KMNIST: where one of those is missing and this is on disk
# (Debian's dataset-fashion-mnist), the run trains on it rather than on 8x8 digits it finishes in a second
STAND_IN = "fashion-mnist"


def stand_in_on_disk(name: str, roots) -> dict | None:
    """The IDX files of the image set that stands in for a missing `name`, when they are on disk."""
    if name == STAND_IN or name not in IMAGE_SETS:
        return None
    return find_image_set(STAND_IN, roots)[0]


def load_source(name: str, *, data_dir=None, strict: bool = False, download: bool = True,
                n_samples: int = 1000, noise: float = 0.1, seed: int = 0,
                mirror: str | None = None, path: str | None = None,
                label: str | None = None, classes: int | None = None) -> tuple[Source, str | None]:
    """The raw data set `name`, and a one-line notice when another one had to stand in."""
    if name not in DATASETS:
        raise choice_error("data set", name, DATASETS)
    if name == BUNDLED:
        return bundled_digits(), None
    if name == CSV:
        from tuilab.engine.data.csv_table import read_csv

        if not path:
            raise TuilabError("data set 'csv' needs its file: set data.path = 'FILE.csv' (or --data FILE.csv)")
        t = read_csv(path, label)
        return Source(t.name, t.X, t.y, None, None, t.n_classes, t.origin), None
    if name not in IMAGE_SETS:
        return synthetic_source(name, n_samples, noise, seed, classes), None
    roots = search_roots(data_dir)
    parts, searched = find_image_set(name, roots)
    why = None
    if parts is None and download:
        from tuilab.engine.data.download import fetch_image_set

        why = fetch_image_set(name, cache_dir(), mirror)
        if why is None:
            parts, searched = find_image_set(name, roots)
    if parts is not None:
        return _image_source(name, parts), None
    looked = ", ".join(str(p) for p in dict.fromkeys(s.parent if s.name == "raw" else s for s in searched))
    problem = f"{name}: IDX files not found (looked in {looked})"
    if download:
        problem = f"{name}: not found on disk and could not be fetched ({why})"
    howto = (f"connect, set {MIRROR_HINT}, or put train-images-idx3-ubyte.gz etc. in <dir>/{name}/ "
             "and pass --data-dir <dir>"
             + (", or apt-get install dataset-fashion-mnist" if name == "fashion-mnist" else ""))
    if strict:
        raise TuilabError(f"{problem}; {howto}")
    # what happens first, then why and how to get the set: a screen that cuts the line keeps the news
    what = f"{name} could not be fetched" if download else f"{name} is not on disk"
    stand_in = stand_in_on_disk(name, roots)
    if stand_in is not None:
        src = _image_source(STAND_IN, stand_in)
        return src, f"{what}: using {STAND_IN} from {src.origin} instead, the same shape. {problem}; {howto}"
    return bundled_digits(), f"{what}: using the bundled digits instead. {problem}; {howto}"


def data_plan(name: str, data_dir=None) -> str:
    """Where a run of `name` will get its data, in words for a preset's card, without fetching anything:
    "" when it is at hand (on disk, bundled or made), else what happens on first use and offline."""
    if name not in IMAGE_SETS:
        return ""
    roots = search_roots(data_dir)
    if find_image_set(name, roots)[0] is not None:
        return ""
    offline = STAND_IN if stand_in_on_disk(name, roots) is not None else "the bundled digits"
    return f"not on disk: fetched on first use; offline, {offline} instead"


def _split(n: int, fraction: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(kept, held out) indices: a seeded random `fraction` of n held out."""
    perm = rng.permutation(n)
    k = int(round(n * fraction))
    return np.sort(perm[k:]), np.sort(perm[:k])


def _normalize(method: str, src: Source, train: np.ndarray, others: list[np.ndarray]):
    """Scale arrays (already float, owned) in place, with statistics from `train` only; returns them with the
    shift and scale per feature where the scaling is affine (None otherwise)."""
    arrays = [train, *others]
    if method == "none":
        return arrays, None, None
    if method == "per_sample":
        for a in arrays:
            a -= a.mean(axis=1, keepdims=True)
            std = a.std(axis=1, keepdims=True)
            a /= np.where(std > 0, std, 1.0)
        return arrays, None, None
    if method == "standardize":
        mean = train.mean(axis=0, dtype=np.float64)
        std = train.std(axis=0, dtype=np.float64)
        std = np.where(std > 1e-12, std, 1.0)  # constant pixels (MNIST's borders) stay 0
    elif src.pixel_max:  # unit, images: the pixel range to [0, 1]
        mean, std = 0.0, src.pixel_max
    else:  # unit, other sets: the training range to [0, 1]
        lo, hi = train.min(axis=0), train.max(axis=0)
        mean, std = lo, np.where(hi > lo, hi - lo, 1.0)
    for a in arrays:
        a -= np.asarray(mean, a.dtype)
        a *= np.asarray(1.0 / std, a.dtype)
    width = train.shape[1]
    return arrays, np.broadcast_to(np.asarray(mean, np.float64), width).copy(), \
        np.broadcast_to(np.asarray(std, np.float64), width).copy()


def _targets(src: Source, target: str, y: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """(2-D float targets, class labels or None)."""
    if src.is_regression_set:
        return np.asarray(y, np.float64).reshape(len(y), -1), None
    if target == "value":  # the class id scaled into [0, 1): digit / 10
        return (y / src.n_classes)[:, None].astype(np.float64), y
    return np.eye(src.n_classes)[y], y


def prepare(src: Source, *, val_fraction: float = 0.1, test_fraction: float = 0.2,
            normalize: str = "unit", target: str = "classes", train_samples: int = 0,
            seed: int = 0, dtype=np.float32, notice: str | None = None) -> Prepared:
    """Split (seeded), normalise with training statistics, build targets, cast to dtype."""
    if normalize not in NORMALIZE:
        raise choice_error("normalize", normalize, NORMALIZE)
    if target not in TARGETS:
        raise choice_error("target", target, TARGETS)
    rng = np.random.default_rng(seed)
    X, y = src.X_train, src.y_train  # raw dtype (uint8 for images): index first, convert once
    test_is_train = src.X_test is None and test_fraction == 0
    if src.X_test is None and not test_is_train:
        keep, test = _split(len(X), test_fraction, rng)
        X_test, y_test, X, y = X[test], y[test], X[keep], y[keep]
    else:
        X_test, y_test = src.X_test, src.y_test
    keep, val = _split(len(X), val_fraction, rng)
    if train_samples and train_samples < len(keep):
        keep = np.sort(rng.choice(keep, train_samples, replace=False))
    X_train, y_train, X_val, y_val = X[keep], y[keep], X[val], y[val]
    if test_is_train:  # a table to learn by heart, such as xor: the test is the training set
        X_test, y_test = X_train, y_train
    if len(X_train) == 0:
        raise TuilabError(f"{src.name}: no training samples left after the validation and test splits")
    X_train, X_val, X_test = (np.array(a, dtype=dtype, order="C") for a in (X_train, X_val, X_test))
    (X_train, X_val, X_test), shift, scale = _normalize(normalize, src, X_train, [X_val, X_test])
    (Ytr, ltr), (Yva, lva), (Yte, lte) = (_targets(src, target, t) for t in (y_train, y_val, y_test))
    cast = [X_train, np.ascontiguousarray(Ytr, dtype), X_val, np.ascontiguousarray(Yva, dtype), X_test,
            np.ascontiguousarray(Yte, dtype)]
    return Prepared(src.name, src.origin, cast[0], cast[1], ltr, cast[2], cast[3], lva, cast[4], cast[5],
                    lte, src.n_classes, "value" if src.is_regression_set else target, notice, normalize, shift, scale)
