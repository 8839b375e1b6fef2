"""Presets: every shipped one loads; mistakes are one clear line naming file and key."""

import tomllib

import pytest

from tuilab.engine.config import presets
from tuilab.engine.config.experiment import build_experiment
from tuilab.engine.config.overrides import parse_override
from tuilab.engine.config.presets import load_experiment
from tuilab.errors import TuilabError

SHIPPED = [name for name, _ in presets.preset_paths()["builtin"]]
REQUIRED = ["shallow-sigmoid", "shallow-adam", "lr-sweep", "deep-sigmoid", "deep-relu", "tapered-relu",
            "optimizer-zoo", "jax-mlp", "digit-regression", "xor", "spirals"]


def test_every_required_preset_ships():
    assert set(REQUIRED) <= set(SHIPPED)


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_preset_loads_and_round_trips(name):
    exp = load_experiment(name)
    assert exp.title and exp.description and exp.runs
    again = build_experiment(tomllib.loads(exp.to_toml()), "config.toml", name)
    assert [r.label for r in again.runs] == [r.label for r in exp.runs]
    assert [r.tables for r in again.runs] == [r.tables for r in exp.runs]


def test_presets_are_faithful():
    s = load_experiment("shallow-sigmoid").runs[0]
    assert s.tables["model"]["hidden"] == [30] and s.tables["model"]["activation"] == "sigmoid"
    assert s.tables["optimizer"] == {**s.tables["optimizer"], "name": "sgd", "lr": 0.001, "momentum": 0.8,
                              "nesterov": True, "weight_decay": 1e-5}
    assert s.train.batch_size == 10 and s.train.epochs == 30 and s.data.name == "mnist"
    deep = load_experiment("deep-sigmoid").runs[0].tables["model"]
    relu = load_experiment("deep-relu").runs[0].tables["model"]
    assert deep["hidden"] == [30] * 8 and relu["hidden"] == [30] * 8
    assert (deep["activation"], deep["init"]) == ("sigmoid", "xavier_normal")
    assert (relu["activation"], relu["init"]) == ("relu", "kaiming_uniform")
    sweep = load_experiment("lr-sweep")
    assert [r.tables["optimizer"]["lr"] for r in sweep.runs] == [1e-4, 1e-3, 1e-2, 1e-1, 1.0]
    zoo = {r.tables["optimizer"]["name"] for r in load_experiment("optimizer-zoo").runs}
    assert {"sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adadelta", "adam", "adamw", "nadam",
            "radam", "adamax", "lion"} <= zoo
    jax = load_experiment("jax-mlp")
    assert {r.tables["optimizer"]["name"]: r.tables["optimizer"]["lr"] for r in jax.runs} == {
        "sgd": 0.01, "momentum": 0.01, "nesterov": 0.01, "adam": 0.001, "rmsprop": 0.001}
    reg = load_experiment("digit-regression").runs[0]
    assert reg.tables["model"]["hidden"] == [21] and reg.tables["model"]["output"] == "sigmoid"
    assert reg.tables["train"]["batch_size"] == 0 and reg.tables["data"]["target"] == "value"
    assert reg.tables["data"]["normalize"] == "per_sample" and reg.tables["data"]["val_fraction"] == 0.2
    xor = load_experiment("xor").runs[0]
    assert xor.tables["model"]["hidden"] == [8, 4] and xor.tables["optimizer"]["name"] == "rmsprop"
    assert xor.tables["optimizer"]["lr"] == 0.02 and xor.tables["train"]["epochs"] == 200


def err(doc, overrides=()):
    with pytest.raises(TuilabError) as info:
        build_experiment(doc, "mine.toml", "mine", overrides)
    msg = str(info.value)
    assert "\n" not in msg and msg.startswith("mine.toml") or msg.startswith("--set")
    return msg.lower()


def test_unknown_keys_suggest_the_closest():
    assert "did you mean 'hidden'" in err({"model": {"hiden": [3]}})
    assert "[model]" in err({"model": {"hiden": [3]}})
    assert "did you mean 'model'" in err({"modle": {}})
    assert "did you mean 'momentum'" in err({"optimizer": {"name": "sgd", "momentun": 0.9}})
    assert "did you mean 'adam'" in err({"optimizer": {"name": "adamm"}})
    assert "did you mean 'relu'" in err({"model": {"activation": "rleu"}})
    assert "[[runs]] 2" in err({"runs": [{"label": "a"}, {"label": "b", "optimiser": {}}]})


def test_wrong_types_and_ranges():
    assert "whole number >= 1" in err({"train": {"epochs": 0}})
    assert "whole number" in err({"train": {"epochs": 2.5}})
    assert "list of layer widths" in err({"model": {"hidden": "30"}})
    assert "in [0.0, 1.0)" in err({"data": {"val_fraction": 1.5}})
    assert "lr must be a number > 0" in err({"optimizer": {"name": "adam", "lr": -1}})
    assert "true or false" in err({"optimizer": {"name": "sgd", "nesterov": "yes"}})
    assert "must be a table" in err({"model": 3})
    assert "needs output 'softmax'" in err({"model": {"output": "sigmoid"}})
    assert "squared_error" in err({"data": {"target": "value"}})
    assert "one name or one per layer" in err({"model": {"hidden": [3, 3], "activation": ["relu"]}})
    assert "schedule" in err({"schedule": {"name": "cosine", "T_max": 0}})


def test_a_surface_presets_runs_share_one_landscape_when_it_is_read():
    """The rule across runs is the preset reader's (issue 28): a surface preset is one landscape drawn beneath its
    runs, so runs on two landscapes are refused in one line when the preset is read, before any run starts."""
    base = {"surface": {"name": "rosenbrock", "steps": 50}, "optimizer": {"name": "adam", "lr": 0.01}}
    assert "same landscape" in err({**base, "runs": [{"label": "a"}, {"label": "b", "surface": {"b": 10.0}}]})
    assert "same landscape" in err({**base, "runs": [{"label": "a"}, {"label": "b", "surface": {"name": "booth"}}]})
    fine = build_experiment({**base, "runs": [{"label": "a", "surface": {"start": [1.0, 2.0]}},
                                              {"label": "b", "surface": {"steps": 80, "max_points": 40}}]},
                            "mine.toml", "mine")
    assert [(r.surface.start, r.surface.steps) for r in fine.runs] == [((1.0, 2.0), 50), ((-4.0, -2.0), 80)]


def test_a_run_is_typed_and_frozen_once_by_the_preset_reader(monkeypatch):
    """Issue 28: every reader takes a run's typed tables (built once, frozen), every key the schema allows is a
    field of its table, and the hyperparameters the reader checked are not checked again by the trainer."""
    import dataclasses

    from tuilab.engine.config import schema
    from tuilab.engine.data.sets import load_source, prepare
    from tuilab.engine.events import Control
    from tuilab.engine.nn import optim
    from tuilab.engine.training.train import Trainer

    for table in ("data", "model", "train"):
        assert list(schema.SCHEMA[table]) == [f.name for f in dataclasses.fields(schema.TYPED[table])]
    run = load_experiment("xor").runs[0]
    assert run.model.hidden == (8, 4) and run.optimizer.name == "rmsprop" and run.train.epochs == 200
    assert run.optimizer.hyper == {k: tuple(v) if isinstance(v, list) else v
                                   for k, v in run.tables["optimizer"].items() if k != "name"}
    with pytest.raises(dataclasses.FrozenInstanceError):
        run.model.hidden = (3,)
    surface = load_experiment("rosenbrock-zoo").runs[0]
    assert surface.model is None and surface.surface.params == {"a": 1.0, "b": 100.0}
    calls = []
    monkeypatch.setattr(optim, "resolve_hyperparameters", lambda *a, **k: calls.append(a) or {})
    src, _ = load_source(run.data.name, n_samples=run.data.n_samples, noise=run.data.noise, seed=run.data.seed)
    data = prepare(src, val_fraction=run.data.val_fraction, test_fraction=run.data.test_fraction,
                   normalize=run.data.normalize, target=run.data.target, train_samples=0, seed=0)
    trainer = Trainer(0, run, data, lambda e: None, Control())
    assert calls == [] and trainer.opt.hyper == run.optimizer.hyper


def test_blobs_and_spirals_take_a_number_of_classes_and_the_others_refuse_it():
    from tuilab.engine.data.sets import load_source

    exp = build_experiment({"data": {"name": "blobs", "classes": 5}}, "mine.toml", "mine")
    d = exp.runs[0].data
    src, _ = load_source(d.name, n_samples=d.n_samples, noise=d.noise, seed=d.seed, classes=d.classes)
    assert src.n_classes == 5 and sorted(set(src.y_train.tolist())) == [0, 1, 2, 3, 4]
    assert "classes is for blobs and spirals" in err({"data": {"name": "moons", "classes": 3}})
    assert "whole number >= 2" in err({"data": {"name": "blobs", "classes": 1}})


def test_runs_merge_over_the_base_and_another_optimizer_replaces_it():
    doc = {"optimizer": {"name": "sgd", "lr": 0.1, "momentum": 0.9}, "train": {"epochs": 3},
           "runs": [{"label": "a", "optimizer": {"lr": 0.5}},
                    {"label": "b", "optimizer": {"name": "adam"}, "train": {"batch_size": 7}}]}
    exp = build_experiment(doc, "mine.toml", "mine")
    a, b = exp.runs
    assert a.tables["optimizer"]["lr"] == 0.5 and a.tables["optimizer"]["momentum"] == 0.9
    assert b.tables["optimizer"]["name"] == "adam" and b.tables["optimizer"]["lr"] == 0.001  # adam's default
    assert b.tables["train"] == {**b.tables["train"], "epochs": 3, "batch_size": 7}


def test_overrides_apply_to_every_run_and_win():
    doc = {"runs": [{"label": "a", "train": {"epochs": 9}}, {"label": "b"}]}
    exp = build_experiment(doc, "mine.toml", "mine", [("train.epochs", 2), ("data.name", "moons"),
                                                      ("optimizer.name", "adam")])
    assert [r.tables["train"]["epochs"] for r in exp.runs] == [2, 2]
    assert {r.tables["data"]["name"] for r in exp.runs} == {"moons"}
    assert "use table.key" in err({}, [("epochs", 3)])
    assert err({}, [("optimiser.lr", 0.1)]).endswith("did you mean 'optimizer.lr'?")
    assert "did you mean 'momentum'" in err({}, [("optimizer.momentun", 0.9)])


def test_parse_override_reads_toml_values():
    assert parse_override("optimizer.lr=0.01") == ("optimizer.lr", 0.01)
    assert parse_override("model.hidden=[64, 32]") == ("model.hidden", [64, 32])
    assert parse_override("optimizer.nesterov=true") == ("optimizer.nesterov", True)
    assert parse_override("data.name=fashion-mnist") == ("data.name", "fashion-mnist")
    assert parse_override("data.name='mnist'") == ("data.name", "mnist")
    with pytest.raises(TuilabError, match="key=value"):
        parse_override("optimizer.lr")


def test_duplicate_labels_are_made_unique():
    exp = build_experiment({"runs": [{}, {}]}, "mine.toml", "mine")
    assert [r.label for r in exp.runs] == ["sgd lr=0.001", "sgd lr=0.001 #2"]


def test_user_files_and_bad_toml(tmp_path, monkeypatch):
    p = tmp_path / "mine.toml"
    p.write_text('title = "Mine"\n[model]\nhidden = [4]\n')
    assert load_experiment(str(p)).title == "Mine"
    p.write_text("[model\nhidden = 3")
    with pytest.raises(TuilabError, match="not valid TOML"):
        load_experiment(str(p))
    with pytest.raises(TuilabError, match="does not exist"):
        load_experiment(str(tmp_path / "nope.toml"))
    with pytest.raises(TuilabError, match="Did you mean 'deep-relu'"):
        load_experiment("deep-rleu")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    (tmp_path / "cfg" / "tuilab" / "presets").mkdir(parents=True)
    (tmp_path / "cfg" / "tuilab" / "presets" / "own.toml").write_text('description = "my own"\n')
    catalog = presets.preset_catalog()
    assert [e.name for e in catalog["Your presets"]] == ["own"]
    assert load_experiment("own").description == "my own"
