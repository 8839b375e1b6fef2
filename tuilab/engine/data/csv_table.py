"""Your own data: a CSV file with a header row, numeric feature columns and a label column (whole numbers: classes;
other numbers: a regression target). A bad file is one line naming the file, the row and the column."""

from __future__ import annotations

import csv
import functools
import io
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tuilab.errors import TuilabError

MIN_ROWS = 10  # enough to split into training, validation and test rows
HOWTO = "a header row naming the columns, then one row of numbers a sample (e.g. x1,x2,label)"


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


@dataclass(frozen=True)
class CsvTable:
    """A CSV file read and checked: its features, and its labels as class ids (0..K-1, the values' sorted order)
    or, for a regression, as values (n, 1) with n_classes 0."""

    name: str
    origin: str
    X: np.ndarray
    y: np.ndarray
    n_classes: int


def read_csv(path, label: str | None = None) -> CsvTable:
    """The file's features and its label column (label: the column's name; default the last column). Read once
    per version of the file: the preset reader reads it to check it, and the run's data is the same reading."""
    p = Path(path)
    if not p.is_file():
        raise TuilabError(f"{p}: no such file; give a CSV file with {HOWTO}")
    st = p.stat()
    return _read(str(p), label, st.st_mtime_ns, st.st_size)


@functools.lru_cache(maxsize=8)
def _read(path: str, label: str | None, mtime_ns: int, size: int) -> CsvTable:
    """read_csv's work, for one version of one file (its modification time and size in the key)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8-sig")
    except (UnicodeDecodeError, OSError) as exc:
        raise TuilabError(f"{p}: cannot be read as text ({exc.__class__.__name__}); give a CSV file with "
                          f"{HOWTO}") from None
    try:
        rows = [(n, r) for n, r in enumerate(csv.reader(io.StringIO(text, newline="")), start=1)
                if any(c.strip() for c in r)]
    except csv.Error as exc:
        raise TuilabError(f"{p}: not a readable CSV file ({exc}); give {HOWTO}") from None
    if not rows:
        raise TuilabError(f"{p}: the file is empty; give {HOWTO}")
    header = [h.strip() for h in rows[0][1]]
    if all(_number(h) is not None for h in header):
        raise TuilabError(f"{p}: row {rows[0][0]} holds numbers, not column names: the first row must be a header "
                          f"({HOWTO})")
    missing = [k + 1 for k, h in enumerate(header) if not h]
    if missing:
        raise TuilabError(f"{p}: column {missing[0]} of the header has no name; name every column")
    twice = sorted({h for h in header if header.count(h) > 1})
    if twice:
        raise TuilabError(f"{p}: the header names {twice[0]!r} twice; name each column once")
    label = header[-1] if label is None else label
    if label not in header:
        raise TuilabError(f"{p}: no column {label!r}; its columns are {', '.join(header)} "
                          "(set data.label to the label column's name)")
    if len(header) < 2:
        raise TuilabError(f"{p}: only the label column {label!r}; a data set needs one or more feature columns")
    body = rows[1:]
    if len(body) < MIN_ROWS:
        raise TuilabError(f"{p}: {len(body)} data rows; a data set needs at least {MIN_ROWS} "
                          "(training, validation and test rows)")
    at = header.index(label)
    X = np.empty((len(body), len(header) - 1))
    y = np.empty(len(body))
    for k, (line, row) in enumerate(body):
        if len(row) != len(header):
            raise TuilabError(f"{p}: row {line} has {len(row)} cells where the header has {len(header)}")
        features = 0
        for j, cell in enumerate(row):
            s = cell.strip()
            name = header[j]
            if not s:
                what = f"the label ({name!r}) is missing" if j == at else f"column {name!r} is empty"
                raise TuilabError(f"{p}: row {line}: {what}; every cell needs a number")
            v = _number(s)
            if v is None:
                raise TuilabError(f"{p}: row {line}, column {name!r}: {s!r} is not a number")
            if not math.isfinite(v):
                raise TuilabError(f"{p}: row {line}, column {name!r}: {s!r} is not a finite number")
            if j == at:
                y[k] = v
            else:
                X[k, features] = v
                features += 1
    X.setflags(write=False)  # shared by every reading of this version of the file (the cache above)
    if np.all(y == np.round(y)):  # whole numbers: classes
        classes = np.unique(y)
        if len(classes) < 2:
            raise TuilabError(f"{p}: column {label!r} holds one class ({classes[0]:g}) in every row; a classifier "
                              "needs two or more")
        ids = np.searchsorted(classes, y).astype(np.int64)
        ids.setflags(write=False)
        return CsvTable(p.name, str(p), X, ids, len(classes))
    values = y[:, None]
    values.setflags(write=False)
    return CsvTable(p.name, str(p), X, values, 0)


def is_regression(path, label: str | None = None) -> bool:
    """Whether the file's label column holds values rather than classes (the preset reader's check of the loss)."""
    return read_csv(path, label).n_classes == 0
