"""Words for a preset: the key settings a person wants to see before starting it (no Textual)."""

from __future__ import annotations

from tuilab.engine.config.experiment import Experiment
from tuilab.engine.data.sets import data_plan


def _lrs(exp: Experiment) -> str:
    lrs = sorted({r.optimizer.lr for r in exp.runs})
    return ", ".join(f"{lr:g}" for lr in lrs)


def brief(names: list[str], width: int) -> str:
    """names joined with ", " in at most `width` characters, whole names only: "sgd, momentum +18 more"."""
    for kept in range(len(names), 0, -1):
        text = ", ".join(names[:kept]) + (f" +{len(names) - kept} more" if kept < len(names) else "")
        if len(text) <= width:
            return text
    return f"{len(names)} optimizers" if len(names) > 1 else names[0][:width]


def describe(exp: Experiment) -> list[tuple[str, str]]:
    """(name, value) pairs: architecture, activation, init, optimizer(s), lr, batch, epochs, data."""
    run = exp.runs[0]
    opts = ", ".join(dict.fromkeys(r.optimizer.name for r in exp.runs))
    if exp.lab == "surface":
        s = run.surface
        return [("surface", s.name + (" " + ", ".join(f"{k}={v:g}" for k, v in s.params.items())
                                      if s.params else "")),
                ("start", f"({s.start[0]:g}, {s.start[1]:g})"), ("steps", f"{s.steps:,}"),
                ("optimizers", opts), ("learning rates", _lrs(exp)), ("runs", str(len(exp.runs)))]
    m, t, d = run.model, run.train, run.data
    # every shape the runs have, in order: circles-width's runs are in-2-out and in-8-out
    shapes = " / ".join(dict.fromkeys("-".join(["in", *map(str, r.model.hidden), "out"]) for r in exp.runs))
    act = m.activation if isinstance(m.activation, str) else "/".join(m.activation)
    r = exp.lr_range
    # a range test sweeps the learning rate over steps: the card says that, not the preset's lr and epochs
    lrs = [("learning rates", f"{r.start:g} … {r.end:g}, rising over {r.steps:,} steps (a range test)")] if r \
        else [("learning rates", _lrs(exp))]
    length = [] if r else [("epochs", str(t.epochs))]
    return [("architecture", f"{shapes}, {m.output} output, {m.loss}"),
            ("activation", act), ("init", m.init), ("optimizers", opts), *lrs,
            ("batch", "full" if t.batch_size == 0 else str(t.batch_size)), *length,
            ("data set", f"{d.name} ({d.normalize})" + (f"; {plan}" if (plan := data_plan(d.name)) else "")),
            ("runs", str(len(exp.runs)))]
