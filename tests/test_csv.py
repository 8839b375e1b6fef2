"""Your own data (issue 29): a CSV file written here trains like any data set; every kind of bad file is one line
naming the file, the row and the column (and hypothesis-fuzzed files never give a traceback); the CLI exits 2 with
nothing written."""

import json
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tuilab.engine.data.csv_table import read_csv
from tuilab.engine.data.sets import load_source, prepare
from tuilab.errors import TuilabError


def _write(path, header, rows):
    path.write_text(",".join(header) + "\n" + "".join(",".join(map(str, r)) + "\n" for r in rows))
    return path


def test_a_file_round_trips_with_its_classes_in_sorted_order(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(50, 3)).round(6)
    labels = rng.choice([3, 7, 11], size=50)
    rows = [(x[0], x[1], k, x[2]) for x, k in zip(X, labels, strict=True)]
    path = _write(tmp_path / "mine.csv", ["a", "b", "kind", "c"], rows)
    t = read_csv(path, "kind")
    np.testing.assert_array_equal(t.X, X)  # the features in file order, the label column taken out
    np.testing.assert_array_equal(t.y, np.searchsorted([3, 7, 11], labels))
    assert t.n_classes == 3 and t.name == "mine.csv"
    src, notice = load_source("csv", path=str(path), label="kind")
    assert notice is None and src.n_classes == 3
    d = prepare(src, normalize="standardize")
    assert d.n_inputs == 3 and d.n_outputs == 3 and len(d.X_train) + len(d.X_val) + len(d.X_test) == 50


def test_a_label_with_fractions_is_a_regression_target(tmp_path):
    path = _write(tmp_path / "r.csv", ["x", "t"], [(i / 10, 0.5 * i + 0.25) for i in range(20)])
    t = read_csv(path)  # the last column by default
    assert t.n_classes == 0 and t.y.shape == (20, 1) and t.y[3, 0] == 1.75


@pytest.mark.parametrize("text, words", [
    ("1,2,3\n4,5,6\n", "row 1 holds numbers, not column names"),
    ("x,y,label\n" + "1,2,0\n" * 5 + "1,abc,1\n" + "1,2,1\n" * 5, "row 7, column 'y': 'abc' is not a number"),
    ("x,y,label\n" + "1,2,0\n" * 5 + "1,2,\n" + "1,2,1\n" * 5, "row 7: the label ('label') is missing"),
    ("x,y,label\n" + "1,2,0\n" * 12, "holds one class (0) in every row"),
    ("x,y,label\n" + "1,2,0\n" * 5 + "nan,2,1\n" + "1,2,1\n" * 5, "row 7, column 'x': 'nan' is not a finite number"),
    ("x,y,label\n" + "1,2,0\n" * 5 + "1,2\n" + "1,2,1\n" * 5, "row 7 has 2 cells where the header has 3"),
    ("x,y,label\n1,2,0\n1,2,1\n", "2 data rows; a data set needs at least 10"),
    ("label\n" + "1\n" * 12, "only the label column"),
    ("x,,label\n" + "1,2,0\n" * 12, "column 2 of the header has no name"),
    ("x,x,label\n" + "1,2,0\n" * 12, "names 'x' twice"),
    ("", "the file is empty"),
])
def test_each_kind_of_bad_file_is_one_line_naming_the_file_and_the_place(tmp_path, text, words):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(TuilabError) as info:
        read_csv(path)
    msg = str(info.value)
    assert words in msg and msg.startswith(str(path)) and "\n" not in msg


def test_a_missing_file_and_a_missing_label_column_say_what_to_do(tmp_path):
    with pytest.raises(TuilabError, match="no such file; give a CSV file with a header row"):
        read_csv(tmp_path / "none.csv")
    path = _write(tmp_path / "f.csv", ["x", "y", "class"], [(1, 2, k % 2) for k in range(12)])
    with pytest.raises(TuilabError, match="no column 'label'; its columns are x, y, class .set data.label"):
        read_csv(path, "label")
    with pytest.raises(TuilabError, match="needs its file"):
        load_source("csv")


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from([*"0123456789.,-e\n\" x", "y", "label", "nan", "inf", ",,", "\r\n", "1,2,0\n",
                                 "0.5,-1,1\n", "x,y,label\n", "\ufeff", "é"]), max_size=150).map("".join))
def test_any_file_is_read_or_refused_in_one_line(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("fuzz") / "f.csv"
    path.write_text(text)
    try:
        t = read_csv(path)
    except TuilabError as exc:
        assert "\n" not in str(exc) and str(path) in str(exc)
    else:
        assert t.X.shape[0] == t.y.shape[0] >= 10 and np.isfinite(t.X).all()


def _tuilab(args, cwd):
    return subprocess.run([sys.executable, "-m", "tuilab", *args], capture_output=True, text=True, timeout=300,
                          cwd=cwd)


def test_the_cli_trains_on_a_file_and_refuses_a_bad_one_before_writing_anything(tmp_path):
    rng = np.random.default_rng(1)
    X = rng.uniform(-1, 1, size=(300, 2))
    path = _write(tmp_path / "two.csv", ["u", "v", "label"],
                  [(round(a, 5), round(b, 5), int(a * b > 0)) for a, b in X])  # xor-like quadrants
    out = tmp_path / "runs"
    r = _tuilab(["--preset", "spirals", "--data", str(path), "--epochs", "30", "--out", str(out), "headless"], tmp_path)
    assert r.returncode == 0, r.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["dataset"] == "two.csv" and summary["runs"][0]["status"] == "completed"
    assert summary["runs"][0]["test_accuracy"] > 0.8
    assert list(out.glob("*/decision.npz"))  # two features: a decision map
    bad = tmp_path / "bad.csv"
    bad.write_text("u,v,label\n" + "1,2,0\n" * 6 + "1,two,1\n" + "1,2,1\n" * 6)
    r = _tuilab(["--preset", "spirals", "--data", str(bad), "--out", str(tmp_path / "no"), "headless"], tmp_path)
    assert r.returncode == 2 and not (tmp_path / "no").exists()
    assert r.stderr.strip().count("\n") == 0 and "row 8, column 'v': 'two' is not a number" in r.stderr
