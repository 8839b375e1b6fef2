"""A small TOML writer for resolved configurations (strings, numbers, booleans, lists, tables)."""

from __future__ import annotations

import json
import math


def _value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)  # JSON escapes are valid TOML basic-string escapes
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{_key(k)} = {_value(x)}" for k, x in v.items()) + " }"
    raise TypeError(f"cannot write {type(v).__name__} as TOML")


def _key(k: str) -> str:
    return k if k.replace("_", "").replace("-", "").isalnum() else json.dumps(k)


def _table(lines: list[str], header: str, table: dict) -> None:
    plain = {k: v for k, v in table.items() if not isinstance(v, dict)}
    nested = {k: v for k, v in table.items() if isinstance(v, dict)}
    if header:
        lines.append(f"\n{header}")
    lines += [f"{_key(k)} = {_value(v)}" for k, v in plain.items()]
    for k, v in nested.items():
        name = header.strip("[]") + "." + k if header else k
        _table(lines, f"[{name}]" if not header.startswith("[[") else f"[{header[2:-2]}.{k}]", v)


def dumps(doc: dict) -> str:
    """TOML text for `doc`; a key whose value is a list of tables becomes [[key]] entries."""
    lines: list[str] = []
    arrays = {k: v for k, v in doc.items()
              if isinstance(v, list) and v and all(isinstance(x, dict) for x in v)}
    _table(lines, "", {k: v for k, v in doc.items() if k not in arrays})
    for k, entries in arrays.items():
        for entry in entries:
            _table(lines, f"[[{k}]]", entry)
    return "\n".join(lines).lstrip("\n") + "\n"
