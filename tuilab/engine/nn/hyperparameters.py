"""An optimizer's hyperparameters checked once, in words: each key's rule (a number in a range, a switch, a
word), the pairs and tuples, and the rules across keys (Rprop's etas, Nesterov's momentum)."""

from __future__ import annotations

import math

import numpy as np

from tuilab.errors import TuilabError, choice_error

# How each hyperparameter is checked: a rule name -> (test, words for the message).
_RULES = {
    "positive": (lambda x: x > 0, "a number > 0"),
    "nonneg": (lambda x: x >= 0, "a number >= 0"),
    "unit": (lambda x: 0 <= x < 1, "a number in [0, 1)"),
    "unit_closed": (lambda x: 0 <= x <= 1, "a number in [0, 1]"),
    "nonpos": (lambda x: x <= 0, "a number <= 0"),
    "at_least_one": (lambda x: x >= 1, "a number >= 1"),
    # "none" (or None; TOML has no null) stands for a default that depends on the run, as torch's
    # None does: Adafactor's eps[0] is then the dtype's machine epsilon
    "nonneg_or_none": (lambda x: x >= 0, 'a number >= 0 or "none"'),
    "any": (lambda x: True, "a number"),
    "ns_steps": (lambda x: x == int(x) and 0 <= x < 100, "a whole number from 0 to 99"),
    "count": (lambda x: x == int(x) and x >= 1, "a whole number >= 1"),
    "count_or_none": (lambda x: x == int(x) and x >= 1, 'a whole number >= 1 or "none"'),
}
_WHOLE = {"ns_steps", "count", "count_or_none"}  # rules whose numbers are counts: kept as int
NONE_STANDS_IN = -1.0  # what a "none" hyperparameter is in the kernel's hp vector
_PARAM_RULES = {
    "lr": "positive",
    "momentum": "unit",
    "dampening": "unit_closed",
    "weight_decay": "nonneg",
    "lr_decay": "nonneg",
    "initial_accumulator_value": "nonneg",
    "eps": "nonneg",
    "alpha": "unit",
    "rho": "unit_closed",
    "betas": "unit",
    "nus": "unit_closed",
    "nu": "unit_closed",
    "momentum_decay": "nonneg",
    "etas": "positive",
    "step_sizes": "nonneg",
    "lambd": "nonneg",
    "t0": "nonneg",
    "beta2_decay": "nonpos",
    "d": "at_least_one",
    "ns_steps": "ns_steps",
    "ns_coefficients": "any",
    "max_iter": "count",
    "max_eval": "count_or_none",
    "history_size": "count",
    "tolerance_grad": "nonneg",
    "tolerance_change": "nonneg",
}
# hyperparameters that are a word: name -> the words, in the order the kernel numbers them
CHOICES = {"adjust_lr_fn": ("original", "match_rms_adamw"), "line_search_fn": ("none", "strong_wolfe")}
_BOOLS = {"nesterov", "amsgrad", "centered", "decoupled_weight_decay", "demon", "maximize"}


def has_rule(key: str) -> bool:
    """Whether `key` can be checked: a number, a switch, a word, or Demon's steps and Muon's rest."""
    return key in _PARAM_RULES or key in _BOOLS or key in CHOICES or key in ("demon_steps", "rest")


def _rule(spec, key: str) -> str:
    """The rule for `key` ("eps[0]" for one of a pair): the optimizer's own, else the shared one."""
    base = key.split("[")[0]
    return spec.rules.get(key) or spec.rules.get(base) or _PARAM_RULES[base]


def _check_number(opt: str, key: str, value, rule: str):
    test, words = _RULES[rule]
    if rule.endswith("_or_none") and (value is None or (isinstance(value, str) and value.lower() == "none")):
        return "none"  # a word, not None, so that records written as TOML read back
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TuilabError(f"{opt}: {key} must be {words}, got {value!r}")
    if not math.isfinite(float(value)) or not test(float(value)):
        raise TuilabError(f"{opt}: {key} must be {words}, got {value!r}")
    return int(value) if rule in _WHOLE else float(value)


def resolve(spec, hyper: dict | None, get_spec) -> dict:
    """The full, validated hyperparameters of optimizer `spec` with `hyper` over its defaults (get_spec: the
    registry's lookup, for an optimizer that names another, Muon's rest)."""
    name = spec.name
    hyper = dict(hyper or {})
    allowed = set(spec.defaults)
    if spec.momentum_param:
        allowed |= {"demon", "demon_steps"}
    if spec.maximize:
        allowed.add("maximize")  # off unless given: configs that never name it stay as they were
    for key in hyper:
        if key in spec.fixed and hyper[key] == spec.fixed[key]:
            continue
        if key in spec.fixed:
            raise TuilabError(f"{name}: {key} is fixed to {spec.fixed[key]!r} for this optimizer")
        if key not in allowed:
            raise choice_error(f"hyperparameter for {name}:", key, allowed)
    out = {**spec.defaults, **spec.fixed, **hyper}
    for key, value in list(out.items()):
        if key in _BOOLS:
            if not isinstance(value, (bool, np.bool_)):
                raise TuilabError(f"{name}: {key} must be true or false, got {value!r}")
            out[key] = bool(value)
        elif key in CHOICES:
            if value not in CHOICES[key]:
                raise choice_error(f"{name}: {key}", value, CHOICES[key])
        elif key == "rest" and spec.rest:
            out[key] = _resolve_rest(name, value, get_spec)
        elif spec.width(key) > 1:
            width = spec.width(key)
            if not isinstance(value, (tuple, list)) or len(value) != width:
                what = "a pair of numbers" if width == 2 else f"{width} numbers"
                raise TuilabError(f"{name}: {key} must be {what}, got {value!r}")
            out[key] = tuple(_check_number(name, f"{key}[{k}]", v, _rule(spec, f"{key}[{k}]"))
                             for k, v in enumerate(value))
        elif key == "demon_steps":
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
                raise TuilabError(f"{name}: demon_steps must be a whole number >= 0, got {value!r}")
        else:
            out[key] = _check_number(name, key, value, _rule(spec, key))
    if "etas" in out and not out["etas"][0] < 1 < out["etas"][1]:
        raise TuilabError(f"{name}: etas must be (etaminus, etaplus) with 0 < etaminus < 1 < etaplus, "
                          f"got {list(out['etas'])}")
    if "step_sizes" in out and not out["step_sizes"][0] <= out["step_sizes"][1]:
        raise TuilabError(f"{name}: step_sizes must be (min, max) with min <= max, got {list(out['step_sizes'])}")
    if "dampening" in out and out.get("nesterov") and (out["momentum"] <= 0 or out["dampening"] != 0):
        raise TuilabError(f"{name}: nesterov needs momentum > 0 and dampening = 0")
    return out


def _resolve_rest(name: str, value, get_spec) -> dict:
    """The optimizer that takes the vectors (biases) of an optimizer for matrices: {name, its hyperparameters}."""
    if not isinstance(value, dict):
        raise TuilabError(f"{name}: rest must be a table naming the optimizer for the biases, "
                          f"e.g. rest = {{name = \"adamw\", lr = 3e-4}}, got {value!r}")
    value = dict(value)
    rest = value.pop("name", "adamw")
    spec = get_spec(rest)
    if spec.whole_tensors or spec.closure is not None:
        raise TuilabError(f"{name}: rest = {rest!r} works per tensor or re-evaluates the loss; the biases need an "
                          "optimizer that steps value by value on one gradient (adamw, adam, sgd, ...)")
    for key in ("demon", "maximize"):
        if value.get(key):
            raise TuilabError(f"{name}: rest cannot take {key}; {name} has no {key} of its own")
    try:
        return {"name": rest, **resolve(spec, value, get_spec)}
    except TuilabError as exc:
        raise TuilabError(f"{name}: rest: {exc}") from None
