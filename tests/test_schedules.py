"""Schedules against torch.optim.lr_scheduler, stepped once per epoch."""

import pytest
from conftest import torch_or_skip

from tuilab.engine.nn.schedules import Schedule
from tuilab.errors import TuilabError

EPOCHS = 40


def torch_lrs(torch, make, warmup=0, start_factor=1 / 3, base=0.1):
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=base)
    main = make(opt)
    sched = main
    if warmup:
        warm = torch.optim.lr_scheduler.LinearLR(opt, start_factor=start_factor, total_iters=warmup)
        sched = torch.optim.lr_scheduler.SequentialLR(opt, [warm, main], milestones=[warmup])
    out = []
    for _ in range(EPOCHS):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


CASES = [
    ("constant", {}, lambda t, o: t.optim.lr_scheduler.ConstantLR(o, factor=1.0, total_iters=0)),
    ("step", {"step_size": 7, "gamma": 0.5}, lambda t, o: t.optim.lr_scheduler.StepLR(o, 7, 0.5)),
    ("exponential", {"gamma": 0.93}, lambda t, o: t.optim.lr_scheduler.ExponentialLR(o, 0.93)),
    ("cosine", {"T_max": 25, "eta_min": 0.001},
     lambda t, o: t.optim.lr_scheduler.CosineAnnealingLR(o, T_max=25, eta_min=0.001)),
]


@pytest.mark.parametrize("warmup", [0, 5])
@pytest.mark.parametrize("name,params,make", CASES, ids=[c[0] for c in CASES])
def test_schedule_matches_torch(name, params, make, warmup):
    torch = torch_or_skip()
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's SequentialLR deprecation chatter
        ref = torch_lrs(torch, lambda o: make(torch, o), warmup=warmup, start_factor=0.2)
    ours = Schedule.make(name, warmup=warmup, warmup_start_factor=0.2, **params).lrs(0.1, 0, EPOCHS)
    assert list(ours) == pytest.approx(ref, rel=1e-12, abs=1e-15)


def test_schedule_bad_input():
    with pytest.raises(TuilabError, match="unknown schedule 'cosin'.*Did you mean 'cosine'"):
        Schedule.make("cosin")
    with pytest.raises(TuilabError, match="gamma must be a number > 0"):
        Schedule.make("step", gamma=-1.0)
    with pytest.raises(TuilabError, match="T_max must be a whole number >= 1"):
        Schedule.make("cosine", T_max=0)
    with pytest.raises(TuilabError, match="unknown setting for schedule 'step': 'T_max'"):
        Schedule.make("step", T_max=3)
