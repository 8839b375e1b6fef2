"""Running a benchmark's other library in a process of its own (so the two never share cores)."""

from __future__ import annotations

import json
import subprocess


def json_from(cmd: list[str]):
    """(what the command printed as JSON, "") or (None, the last line of its error output)."""
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        lines = proc.stderr.strip().splitlines()
        return None, lines[-1] if lines else f"exit code {proc.returncode}"
    return json.loads(proc.stdout), ""
