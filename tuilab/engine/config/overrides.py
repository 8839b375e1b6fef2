"""--set key=value: a string to a (key, value) pair, and pairs to the tables they change."""

from __future__ import annotations

import difflib
import tomllib

from tuilab.errors import TuilabError

NOT_TOML = object()  # what split_setting gives for a value that is not TOML


def split_setting(text: str, option: str, form: str, example: str) -> tuple[str, object]:
    """'KEY=VALUE' (of --set or --sweep) -> (key, the value read as TOML, or NOT_TOML)."""
    if "=" not in text:
        raise TuilabError(f"{option} {text!r}: write it as {form}, e.g. {option} {example}")
    key, raw = (s.strip() for s in text.split("=", 1))
    try:
        return key, tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return key, NOT_TOML


def parse_override(text: str) -> tuple[str, object]:
    """'optimizer.lr=0.01' -> ('optimizer.lr', 0.01); the value is read as TOML, else as a string."""
    key, value = split_setting(text, "--set", "key=value", "optimizer.lr=0.01")
    if value is NOT_TOML:
        value = text.split("=", 1)[1].strip()  # a bare word: a name such as adam or fashion-mnist
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
            close = difflib.get_close_matches(parts[0], list(valid), n=1)
            hint = f" Did you mean '{'.'.join([close[0], *parts[1:]])}'?" if close and parts[0] not in valid else ""
            raise TuilabError(f"--set {key!r}: use table.key with table one of {', '.join(valid)} "
                              f"(e.g. optimizer.lr=0.01, train.epochs=5).{hint}")
        tables.setdefault(parts[0], {})[parts[1]] = value
    return tables, top
