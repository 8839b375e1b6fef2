"""The pip command that adds an optional extra, for how this tuilab was installed.

tuilab is not on the package index: `pip install "tuilab[web]"` fails for a person who
cloned it. From a clone (an editable install: the package sits beside its pyproject.toml)
the command that works names the clone's folder.
"""

from __future__ import annotations

import os
from pathlib import Path


def pip_install(extra: str) -> str:
    """`pip install -e ".[extra]"` from a clone (its folder named unless it is the current one), else the
    package's name with the extra."""
    root = Path(__file__).resolve().parent.parent
    if not (root / "pyproject.toml").is_file():
        return f'pip install "tuilab[{extra}]"'
    try:
        here = Path(os.getcwd()).resolve() == root
    except OSError:
        here = False
    where = "." if here else str(root)
    return f'pip install -e "{where}[{extra}]"'
