"""A run directory: config.toml, metrics.csv (flushed each epoch), summary.json and the rest.

Written so that another tool can read it and so that a run killed half-way keeps
what it finished: metrics rows go to disk as they come, the summary at the end.
"""

from __future__ import annotations

import csv
import json
import math
import re
import time
from pathlib import Path

import numpy as np

from tuilab.errors import TuilabError


def default_out(preset: str, root: Path | str = "runs") -> Path:
    """runs/<timestamp>-<preset>/, made unique if that folder already exists."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = Path(root) / f"{stamp}-{slug(preset)}"
    out, k = base, 2
    while out.exists():
        out, k = Path(f"{base}-{k}"), k + 1
    return out


def slug(text: str) -> str:
    """A file-name-safe form of a label: 'adam lr=0.001' -> 'adam-lr-0.001'."""
    s = re.sub(r"[^A-Za-z0-9._+]+", "-", text).strip("-.")
    return s or "run"


def _plain(value):
    """JSON-safe: NaN and infinities become null, numpy scalars plain numbers."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return None if not math.isfinite(float(value)) else float(value)
    return value


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, (float, np.floating)):
        return "" if math.isnan(value) else repr(float(value))
    return str(value)


class RunRecords:
    """The files of one experiment under `out`."""

    def __init__(self, out: Path | str):
        self.out = Path(out)
        self._files: dict[str, tuple] = {}
        self.started = time.strftime("%Y-%m-%dT%H:%M:%S%z")

    def open(self, config_toml: str) -> None:
        """Create the folder and write config.toml; an unwritable place is an error now, not later."""
        try:
            self.out.mkdir(parents=True, exist_ok=True)
            (self.out / "config.toml").write_text(config_toml)
        except OSError as exc:
            raise TuilabError(f"cannot write records to {self.out}: {exc.strerror}; "
                              "choose another folder with --out") from None

    def start_table(self, name: str, columns: list[str]) -> None:
        """Begin a CSV file whose rows are appended and flushed one at a time."""
        f = open(self.out / name, "w", newline="")
        writer = csv.writer(f)
        writer.writerow(columns)
        f.flush()
        self._files[name] = (f, writer, columns)

    def append(self, name: str, row: dict) -> None:
        f, writer, columns = self._files[name]
        writer.writerow([_cell(row.get(c)) for c in columns])
        f.flush()

    def append_many(self, name: str, rows) -> None:
        f, writer, columns = self._files[name]
        writer.writerows([_cell(r.get(c)) for c in columns] for r in rows)
        f.flush()

    def save_params(self, label: str, theta: np.ndarray, **meta) -> Path:
        """<out>/<label>/params.npz with theta and whatever rebuilds the network."""
        folder = self.out / slug(label)
        folder.mkdir(exist_ok=True)
        path = folder / "params.npz"
        np.savez(path, theta=theta, **{k: np.asarray(v) for k, v in meta.items()})
        return path

    def write_csv(self, name: str, columns: list[str], rows) -> None:
        with open(self.out / name, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(columns)
            w.writerows([_cell(v) for v in r] for r in rows)

    def write_summary(self, summary: dict) -> None:
        """summary.json, written whole to a temporary name and moved into place."""
        doc = {"started": self.started, "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **summary}
        tmp = self.out / "summary.json.tmp"
        tmp.write_text(json.dumps(_plain(doc), indent=2) + "\n")
        tmp.replace(self.out / "summary.json")

    def close(self) -> None:
        for f, _, _ in self._files.values():
            f.close()
        self._files.clear()
