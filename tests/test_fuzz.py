"""Property-based fuzzing of every door user input comes through: preset TOML, --set, IDX files,
the edit form. Whatever comes in, the only exception that may come out is TuilabError, in one line."""

import contextlib
import gzip
import io
import os
import tomllib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tuilab.app.edit_form import experiment_from_form
from tuilab.cli import main as cli_main
from tuilab.engine.config.experiment import build_experiment
from tuilab.engine.config.overrides import parse_override
from tuilab.engine.config.presets import load_experiment, read_toml
from tuilab.engine.data.idx import parse_idx, read_idx, write_idx
from tuilab.errors import TuilabError

# TUILAB_FUZZ_SCALE=10 hunts ten times as long; the default keeps the suite's time
SCALE = float(os.environ.get("TUILAB_FUZZ_SCALE", "1"))
FUZZ = settings(max_examples=int(2000 * SCALE), deadline=None, suppress_health_check=[HealthCheck.too_slow])
# random documents: Hypothesis spends ~40 ms drawing each nested one (2,000 took 80-120 s of the suite)
FUZZ_DOCUMENTS = settings(FUZZ, max_examples=int(500 * SCALE))

# the words a preset is made of, so random documents reach deep into the checks, and some others
TABLES = ["data", "model", "optimizer", "schedule", "train", "surface", "runs", "title", "description", "lr_range",
          "zzz"]
KEYS = ["name", "lr", "hidden", "activation", "init", "bias_init", "output", "loss", "dtype", "epochs",
        "batch_size", "seed", "val_fraction", "test_fraction", "n_samples", "noise", "normalize", "target",
        "train_samples", "momentum", "betas", "eps", "weight_decay", "nesterov", "amsgrad", "demon",
        "demon_steps", "nus", "step_size", "gamma", "T_max", "warmup", "start", "steps", "a", "b", "A",
        "wall", "condition", "label", "max_points", "end", "smooth", "stop_factor", "internals", "bogus"]
NAMES = ["adam", "sgd", "lion", "demon_adam", "qhadam", "relu", "sigmoid", "gelu", "tanh", "softmax",
         "mnist", "digits", "spirals", "xor", "rosenbrock", "saddle", "cosine", "step", "float32",
         "float64", "kaiming_uniform", "zeros", "mse", "value", "ill-conditioned", "nope"]

scalars = st.one_of(
    st.integers(-10**20, 10**20), st.sampled_from([0, 1, 2, -1, 10**9]),
    st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([0.0, 0.5, 1.0, 1e-3, -0.0, 1e300]),
    st.booleans(), st.sampled_from(NAMES), st.text(max_size=8))
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.sampled_from(KEYS), inner, max_size=4)), max_leaves=8)
tables = st.dictionaries(st.sampled_from(KEYS), values, max_size=6)
docs = st.dictionaries(st.sampled_from(TABLES), st.one_of(tables, values, st.lists(tables, max_size=3)),
                       max_size=6)


def _only_tuilab_errors(fn, *args, **kw):
    try:
        return fn(*args, **kw)
    except TuilabError as exc:
        assert str(exc) and "\n" not in str(exc), repr(str(exc))  # one line that says what is wrong
        return None


@FUZZ_DOCUMENTS
@given(docs)
def test_random_preset_documents_give_an_experiment_or_one_tuilab_error(doc):
    _only_tuilab_errors(build_experiment, doc, "fuzz.toml", "fuzz")


@FUZZ
@given(st.one_of(st.text(max_size=60), st.binary(max_size=60).map(lambda b: b.decode("latin-1"))))
def test_random_toml_text_gives_a_document_or_one_tuilab_error(tmp_path_factory, text):
    path = tmp_path_factory.getbasetemp() / "fuzz.toml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass") if text.isprintable() else \
        path.write_bytes(text.encode("utf-8", errors="replace"))
    doc = _only_tuilab_errors(read_toml, path)
    if doc is not None:
        _only_tuilab_errors(build_experiment, doc, "fuzz.toml", "fuzz")


SET_KEYS = st.one_of(st.sampled_from([f"{t}.{k}" for t in TABLES[:6] for k in KEYS[:30]] + ["title", "x", ""]),
                     st.text(max_size=12))
SET_VALUES = st.one_of(st.sampled_from(["0.01", "-1", "nan", "inf", "[1, 2]", "[]", "true", "adam", "'x'",
                                        "{a = 1}", "1e400", "[[1]]", '"relu"', "0x10", "1_000"]),
                       st.text(max_size=12))


@FUZZ
@given(st.lists(st.tuples(SET_KEYS, SET_VALUES).map(lambda kv: f"{kv[0]}={kv[1]}") | st.text(max_size=20),
                min_size=1, max_size=3),
       st.sampled_from(["spirals", "rosenbrock", "optimizer-zoo"]))
def test_random_set_strings_give_an_experiment_or_one_tuilab_error(sets, preset):
    def load():
        return load_experiment(preset, [parse_override(s) for s in sets])
    _only_tuilab_errors(load)


def _idx_bytes(arr):
    code = {np.dtype("uint8"): 0x08, np.dtype("int8"): 0x09, np.dtype(">i2"): 0x0B, np.dtype(">i4"): 0x0C,
            np.dtype(">f4"): 0x0D, np.dtype(">f8"): 0x0E}[arr.dtype]
    head = bytes([0, 0, code, arr.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
    return head + arr.tobytes()


arrays = st.tuples(st.sampled_from(["uint8", "int8", ">i2", ">i4", ">f4", ">f8"]),
                   st.lists(st.integers(0, 5), min_size=1, max_size=3)).map(
    lambda t: np.zeros(t[1], t[0]))


@FUZZ
@given(st.one_of(st.binary(max_size=64),
                 st.tuples(arrays, st.integers(0, 200), st.binary(max_size=8)).map(
                     lambda t: _idx_bytes(t[0])[:t[1]] + t[2])))
def test_random_and_truncated_idx_bytes_give_an_array_or_one_tuilab_error(data):
    arr = _only_tuilab_errors(parse_idx, data, "fuzz.idx")
    if arr is not None:
        assert arr.size * arr.dtype.itemsize + 4 + 4 * arr.ndim == len(data)


@FUZZ
@given(st.binary(max_size=80), st.booleans())
def test_random_gzip_files_read_as_an_array_or_one_tuilab_error(tmp_path_factory, data, compress):
    path = tmp_path_factory.getbasetemp() / "fuzz-idx1-ubyte.gz"
    path.write_bytes(gzip.compress(data) if compress else data)
    _only_tuilab_errors(read_idx, path)


def test_idx_fuzz_strategy_reaches_real_files(tmp_path):
    # the hand-built bytes above are what write_idx writes, so the fuzz also runs through valid files
    arr = np.arange(12, dtype=np.uint8).reshape(3, 4)
    write_idx(tmp_path / "a.idx", arr)
    assert (tmp_path / "a.idx").read_bytes() == _idx_bytes(arr)


NETWORK = load_experiment("spirals")
SURFACE = load_experiment("rosenbrock")
FIELD_TEXT = st.one_of(st.sampled_from(["0.01", "-0.5", "0", "nan", "inf", "1e400", "abc", "", "[1, 2]",
                                        "true", "64", "3.5", "[[1]]", "{}", "'x'", "[16, 0]", "10000000000"]),
                       st.text(max_size=10))
NAME_TEXT = st.one_of(st.sampled_from(NAMES), st.text(max_size=8))


@FUZZ
@given(st.fixed_dictionaries({"optimizer": NAME_TEXT, "lr": FIELD_TEXT, "batch": FIELD_TEXT,
                              "epochs": FIELD_TEXT, "hidden": FIELD_TEXT, "activation": NAME_TEXT,
                              "init": NAME_TEXT, "data": NAME_TEXT, "steps": FIELD_TEXT, "x": FIELD_TEXT,
                              "y": FIELD_TEXT}),
       st.dictionaries(st.sampled_from(KEYS[19:30]), FIELD_TEXT, max_size=4), st.booleans())
def test_random_edit_form_values_give_a_run_or_one_tuilab_error(form, hyper, surface):
    exp = _only_tuilab_errors(experiment_from_form, SURFACE if surface else NETWORK, form, hyper)
    if exp is not None:
        assert len(exp.runs) == 1 and exp.runs[0].optimizer.lr > 0


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=30))
def test_the_command_line_turns_a_bad_set_into_one_line_and_exit_2(text):
    # a bad epochs after it, so that nothing trains whatever the random one says
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        code = cli_main(["--preset", "spirals", f"--set={text}", "--set", "train.epochs=-1", "headless"])
    err = stderr.getvalue()
    assert code == 2 and err.startswith("tuilab: error: ") and err.count("\n") == 1, err


def test_toml_decode_errors_are_one_line(tmp_path):
    (tmp_path / "bad.toml").write_text("[data\nname = 1\n")
    with pytest.raises(TuilabError) as info:
        read_toml(tmp_path / "bad.toml")
    assert "\n" not in str(info.value)
    with pytest.raises(tomllib.TOMLDecodeError):
        tomllib.loads("[data\n")
