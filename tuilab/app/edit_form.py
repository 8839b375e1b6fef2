"""The edit form's rules without the widgets: field texts in, a one-run Experiment or a TuilabError out.

The EditRun screen gathers its fields' texts and calls `experiment_from_form`; the fuzz tests
call it directly with any text a person could type.
"""

from __future__ import annotations

import copy
import json
import tomllib

from tuilab.engine.config.experiment import Experiment, build_experiment


def field_text(value, nested: bool = False) -> str:
    """A preset value as the text a field shows: 0.001 -> '0.001', True -> 'true', [1, 2] -> '[1, 2]',
    a table -> '{ name = "adamw", lr = 0.001 }' (Muon's rest); a word alone stays bare ('original'), a word
    in a list or table is quoted ('["none", 0.001]'), so that parse_field reads every one back."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(field_text(v, True) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {field_text(v, True)}" for k, v in value.items()) + " }"
    if isinstance(value, str) and nested:
        return json.dumps(value)
    return f"{value:g}" if isinstance(value, float) else str(value)


def parse_field(text: str):
    """A field's text as a TOML value (numbers, true/false, [lists]); else the bare text."""
    try:
        return tomllib.loads(f"v = {text.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        return text.strip()


def experiment_from_form(base: Experiment, form: dict[str, str], hyper: dict[str, str]) -> Experiment:
    """The edited run of `base` (its last run with the form's values) as a one-run Experiment.

    form: the texts of optimizer and lr, and of steps, x, y (surfaces) or batch, epochs, hidden,
    activation, init, data (networks); hyper: the optimizer's other fields, by name. Anything
    wrong is a TuilabError saying what, by the same rules as a preset.
    """
    tables = copy.deepcopy(base.runs[-1].tables)
    name = form["optimizer"].strip()
    opt = {"name": name, "lr": parse_field(form["lr"])}
    for key, text in hyper.items():
        opt[key] = parse_field(text)
    tables["optimizer"] = opt
    if base.lab == "surface":
        tables["surface"].update(steps=parse_field(form["steps"]),
                                 start=[parse_field(form["x"]), parse_field(form["y"])])
    else:
        hidden = parse_field(f"[{form['hidden'].strip().strip('[]')}]")
        tables["model"].update(hidden=hidden, activation=form["activation"].strip(), init=form["init"].strip())
        tables["train"].update(batch_size=parse_field(form["batch"]), epochs=parse_field(form["epochs"]))
        tables["data"]["name"] = form["data"].strip()
    lr = opt["lr"]
    label = f"{name} lr={lr:g}" if isinstance(lr, (int, float)) and not isinstance(lr, bool) else name
    doc = {"title": base.title, "description": base.description, **tables, "runs": [{"label": f"{label} (edit)"}]}
    return build_experiment(doc, "edit", base.name)
