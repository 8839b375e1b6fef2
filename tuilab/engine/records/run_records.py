"""A run directory: config.toml, metrics.csv (flushed each epoch), summary.json and the rest.

Written so that another tool can read it and so that a run killed at any moment (SIGKILL
included) keeps what it finished: metrics rows go to disk as they come (one write each, at
each epoch's end); config.toml, summary.json, params.npz and the other whole files are
written to a temporary name and renamed into place, so a reader finds the old or the new
file, never half of one. summary.json is there from the start (status "running") and is
rewritten as each run ends. `read_records` reads a folder back, whatever state it was left in.
"""

from __future__ import annotations

import csv
import functools
import io
import json
import math
import os
import re
import time
from dataclasses import dataclass, field
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


def write_atomic(path: Path, data: bytes | str) -> None:
    """Write a whole file so that it is either the old one or the new one, whatever happens."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)
    os.replace(tmp, path)


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
            write_atomic(self.out / "config.toml", config_toml)
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

    def continue_table(self, name: str, columns: list[str], keep) -> None:
        """Go on with a table a stopped run began: rows for which keep(row) is false are dropped
        (rewritten whole first), and new rows are appended as with start_table. A table open here is closed
        first: a run's rows past an epoch are dropped so (its worker died; it trains them again)."""
        if name in self._files:
            self._files.pop(name)[0].close()
        path = self.out / name
        rows = []
        if path.exists():
            lines = path.read_text().splitlines()
            reader = list(csv.reader(lines))
            header = reader[0] if reader else columns
            missing = set(header) - set(columns)
            if missing:
                raise TuilabError(f"{path}: its columns are not those this tuilab writes ({', '.join(sorted(missing))} "
                                  "is not one); cannot continue it")
            # an older tuilab's table has fewer columns (no internals): its rows go on with them empty
            rows = [[d.get(c, "") for c in columns] for d in (dict(zip(header, r, strict=True))
                                                            for r in reader[1:] if len(r) == len(header)) if keep(d)]
        text = io.StringIO(newline="")
        w = csv.writer(text)
        w.writerow(columns)
        w.writerows(rows)
        write_atomic(path, text.getvalue())
        f = open(path, "a", newline="")
        self._files[name] = (f, csv.writer(f), columns)

    def read_csv_rows(self, name: str, keep) -> list[list]:
        """The rows (after the header) of a table this folder has, those with keep(row) true."""
        path = self.out / name
        if not path.exists():
            return []
        return [r for r in list(csv.reader(path.read_text().splitlines()))[1:] if r and keep(r)]

    def append_from_job(self, name: str, columns: list[str], row: dict) -> None:
        """Append one row from another process: a single write to a file opened for appending, so
        rows from several jobs never interleave, and the row is on disk before the job goes on."""
        text = io.StringIO(newline="")
        csv.writer(text).writerow([_cell(row.get(c)) for c in columns])
        fd = os.open(self.out / name, os.O_WRONLY | os.O_APPEND)
        try:
            os.write(fd, text.getvalue().encode())
        finally:
            os.close(fd)

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
        buf = io.BytesIO()
        np.savez(buf, theta=theta, **{k: np.asarray(v) for k, v in meta.items()})
        write_atomic(path, buf.getvalue())
        return path

    def save_decision(self, label: str, m) -> Path:
        """<out>/<label>/decision.npz: a run's last decision map (engine.nn.decision), written whole."""
        folder = self.out / slug(label)
        folder.mkdir(exist_ok=True)
        path = folder / "decision.npz"
        buf = io.BytesIO()
        np.savez(buf, x=m.x, y=m.y, p=m.p)
        write_atomic(path, buf.getvalue())
        return path

    def write_csv(self, name: str, columns: list[str], rows) -> None:
        text = io.StringIO(newline="")
        w = csv.writer(text)
        w.writerow(columns)
        w.writerows([_cell(v) for v in r] for r in rows)
        write_atomic(self.out / name, text.getvalue())

    def write_summary(self, summary: dict) -> None:
        """summary.json, written whole to a temporary name and moved into place."""
        ended = {} if summary.get("status") == "running" else {"finished": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        doc = {"started": self.started, **ended, **summary}
        write_atomic(self.out / "summary.json", json.dumps(_plain(doc), indent=2) + "\n")

    def close(self) -> None:
        for f, _, _ in self._files.values():
            f.close()
        self._files.clear()


# ---- reading a folder back ----

@dataclass
class Reopened:
    """A records folder as it was left: finished, stopped, killed or written by an older tuilab."""

    folder: Path
    summary: dict  # summary.json, or {} when there is none
    runs: list[dict]  # each run's summary, its epochs_done and status checked against metrics.csv
    metrics: list[dict]  # metrics.csv rows (numbers as numbers)
    status: str
    notes: list[str] = field(default_factory=list)  # what was missing or had to be mended

    @property
    def lab(self) -> str:
        return self.summary.get("kind", "network")

    @property
    def title(self) -> str:
        return self.summary.get("title") or self.config.get("title") or self.summary.get("preset") \
            or self.folder.name

    @property
    def dataset(self) -> str | None:
        """The data set the runs trained on; for records killed before their summary, the one configured."""
        return self.summary.get("dataset") or (self.config.get("data") or {}).get("name")

    @functools.cached_property
    def config(self) -> dict:
        """config.toml as a document ({} when it cannot be read), read once."""
        import tomllib

        try:
            return tomllib.loads((self.folder / "config.toml").read_text())
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
            return {}


def _number(text: str):
    if text == "":
        return math.nan
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            return text


def read_table(path: Path, notes: list[str]) -> list[dict]:
    """A CSV table's rows as dicts, numbers as numbers; rows cut short are left out and said in notes."""
    if not path.exists():
        return []
    lines = path.read_text(errors="replace").splitlines()
    rows = list(csv.reader(lines))
    if not rows:
        return []
    header, body = rows[0], rows[1:]
    whole = [r for r in body if len(r) == len(header)]
    if len(whole) < len(body):
        notes.append(f"{path.name}: {len(body) - len(whole)} incomplete row(s) left out (a write cut short)")
    return [{k: _number(v) for k, v in zip(header, r, strict=True)} for r in whole]


def read_records(folder) -> Reopened:
    """The records in `folder`; a TuilabError (one line) when it holds none."""
    folder = Path(folder)
    if not folder.exists():
        raise TuilabError(f"{folder} does not exist; give the folder a run wrote, e.g. runs/<time>-<preset>")
    if not (folder / "config.toml").is_file():
        raise TuilabError(f"{folder} holds no tuilab records (no config.toml); "
                          "give the folder a run wrote, e.g. runs/<time>-<preset>")
    notes: list[str] = []
    summary: dict = {}
    if (folder / "summary.json").is_file():
        try:
            summary = json.loads((folder / "summary.json").read_text())
        except (json.JSONDecodeError, UnicodeDecodeError):
            notes.append("summary.json is unreadable; the runs are rebuilt from metrics.csv")
    else:
        notes.append("no summary.json (written by an older tuilab, or killed before it): "
                     "the runs are rebuilt from metrics.csv")
    metrics = read_table(folder / "metrics.csv", notes)
    runs = [dict(r) for r in summary.get("runs", [])]
    by_run: dict[int, list[dict]] = {}
    for row in metrics:
        if isinstance(row.get("run"), int):
            by_run.setdefault(row["run"], []).append(row)
    for i in sorted(by_run):
        while len(runs) <= i:
            runs.append({"label": f"run {len(runs) + 1}", "status": "pending"})
    expected = ("train_loss", "val_loss", "val_accuracy", "test_loss", "test_accuracy", "samples_per_second",
                "grad_ratio")
    if metrics:
        missing = [c for c in expected if c not in metrics[0]]
        if missing:
            notes.append(f"metrics.csv has no {', '.join(missing)} (an older tuilab); shown as -")
    alive = summary.get("status") == "running"
    for i, r in enumerate(runs):
        rows = by_run.get(i, [])
        if rows and r.get("epochs_done", 0) != len(rows):
            last = rows[-1]
            r.update({k: last.get(k) for k in ("label", *expected) if k in last})
            r["epochs_done"] = len(rows)
            r["epoch"] = last.get("epoch")
        r.setdefault("epochs_done", len(rows))
        if alive and r.get("status") in ("pending", "running"):
            r["status"] = "interrupted" if rows else "pending"
    status = summary.get("status", "interrupted")
    if alive:
        status = "interrupted"
        notes.append("the run did not finish writing its records (killed, or still running): "
                     "every finished epoch is shown")
    return Reopened(folder, summary, runs, metrics, status, notes)
