"""--set key=value: a string to a (key, value) pair, and pairs to the tables they change."""

from __future__ import annotations

import tomllib

from tuilab.errors import TuilabError


def parse_override(text: str) -> tuple[str, object]:
    """'optimizer.lr=0.01' -> ('optimizer.lr', 0.01); the value is read as TOML, else as a string."""
    if "=" not in text:
        raise TuilabError(f"--set {text!r}: write it as key=value, e.g. --set optimizer.lr=0.01")
    key, raw = (s.strip() for s in text.split("=", 1))
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw  # a bare word: a name such as adam or fashion-mnist
    return key, value


def overrides_as_tables(overrides, valid) -> tuple[dict, dict]:
    """--set pairs -> ({table: {key: value}}, {top-level key: value}); tables must be in `valid`."""
    tables: dict = {}
    top: dict = {}
    for key, value in overrides:
        parts = key.split(".")
        if len(parts) == 1 and key in ("title", "description"):
            top[key] = value
            continue
        if len(parts) != 2 or parts[0] not in valid:
            raise TuilabError(f"--set {key!r}: use table.key with table one of {', '.join(valid)} "
                              "(e.g. optimizer.lr=0.01, train.epochs=5)")
        tables.setdefault(parts[0], {})[parts[1]] = value
    return tables, top
