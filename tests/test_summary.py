"""Words for a preset (app.summary), as the browser and the dashboard's header show them."""

from tuilab.app.summary import brief, describe
from tuilab.engine.config.presets import load_experiment


def test_a_long_list_of_optimizers_is_cut_between_names_and_says_how_many_are_left():
    names = [r.optimizer.name for r in load_experiment("optimizer-zoo").runs]
    text = brief(names, 36)
    assert len(text) <= 36 and text.endswith(" more")
    shown = text.rsplit(" +", 1)[0].split(", ")
    assert shown == names[:len(shown)]  # whole names, in order: no "adagr"
    assert int(text.rsplit("+", 1)[1].split()[0]) == len(names) - len(shown)


def test_a_short_list_is_whole_and_a_too_long_name_gives_a_count():
    assert brief(["sgd", "adam"], 36) == "sgd, adam"
    assert brief(["x" * 40, "adam"], 36) == "2 optimizers"
    assert brief(["x" * 40], 10) == "x" * 10


def test_describe_names_each_optimizer_once():
    parts = dict(describe(load_experiment("optimizer-zoo-seeds")))
    names = parts["optimizers"].split(", ")
    assert len(names) == len(set(names))


def test_a_range_tests_card_says_what_will_run():
    parts = dict(describe(load_experiment("lr-finder-shallow")))
    r = load_experiment("lr-finder-shallow").lr_range
    assert parts["learning rates"] == f"{r.start:g} … {r.end:g}, rising over {r.steps:,} steps (a range test)"
    assert "epochs" not in parts  # it trains steps, not the preset's epochs
