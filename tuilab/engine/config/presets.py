"""Finding presets (built in, the user's, a path), reading their TOML, and the catalog the browser shows."""

from __future__ import annotations

import difflib
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

from tuilab.engine.config.experiment import Experiment, build_experiment
from tuilab.errors import TuilabError


def builtin_presets_dir() -> Path:
    here = Path(__file__).resolve().parents[2]  # the tuilab package: engine/config/presets.py
    inside = here / "presets"  # in an installed wheel
    return inside if inside.is_dir() else here.parent / "presets"  # in a source checkout


def user_presets_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "tuilab" / "presets"


def preset_paths() -> dict[str, list[tuple[str, Path]]]:
    """{'builtin': [(name, path)...], 'user': [...]} sorted by name."""
    out = {}
    for group, folder in (("builtin", builtin_presets_dir()), ("user", user_presets_dir())):
        files = sorted(folder.glob("*.toml")) if folder.is_dir() else []
        out[group] = [(p.stem, p) for p in files]
    return out


def find_preset(name_or_path: str) -> Path:
    """A preset name (built-in or the user's) or a path to a TOML file."""
    p = Path(name_or_path).expanduser()
    if p.suffix == ".toml" or os.sep in name_or_path or "/" in name_or_path:
        if not p.is_file():
            raise TuilabError(f"preset file {name_or_path} does not exist")
        return p
    known = {}
    for group in preset_paths().values():
        for stem, path in group:
            known.setdefault(stem, path)
    if name_or_path not in known:
        close = difflib.get_close_matches(name_or_path, list(known), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise TuilabError(f"unknown preset {name_or_path!r}; `tuilab list` shows them all.{hint}")
    return known[name_or_path]


def read_toml(path: Path) -> dict:
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as exc:
        raise TuilabError(f"{path}: not valid TOML: {exc}") from None
    except OSError as exc:
        raise TuilabError(f"cannot read preset {path}: {exc.strerror}") from None


def load_experiment(name_or_path: str, overrides=(), sweeps=(), lr_range: bool | None = None,
                    fair: bool | None = None) -> Experiment:
    """Find, read and resolve a preset, with (key, value) overrides applied to every run and
    (key, values) sweep axes added to its sweep; lr_range: a range test of each run (--lr-range); fair: a fair
    race of its runs (--fair; False: --no-fair, the runs as they are)."""
    path = find_preset(name_or_path)
    shown = path.name if path.parent == builtin_presets_dir() else str(path)
    return build_experiment(read_toml(path), shown, path.stem, overrides, sweeps, lr_range, fair)


@dataclass(frozen=True)
class PresetInfo:
    """What a preset browser shows before anything is resolved."""

    name: str
    path: Path
    title: str
    description: str
    lab: str  # "network" or "surface"
    error: str | None = None


def preset_catalog() -> dict[str, list[PresetInfo]]:
    """{'Networks': [...], 'Surfaces': [...], 'Your presets': [...]}: every preset, read but not run."""
    groups: dict[str, list[PresetInfo]] = {"Networks": [], "Surfaces": [], "Your presets": []}
    for group, entries in preset_paths().items():
        for name, path in entries:
            try:
                doc = read_toml(path)
                info = PresetInfo(name, path, str(doc.get("title", name)), str(doc.get("description", "")),
                                  "surface" if "surface" in doc else "network")
            except TuilabError as exc:
                info = PresetInfo(name, path, name, "", "network", str(exc))
            key = ("Your presets" if group == "user"
                   else "Surfaces" if info.lab == "surface" else "Networks")
            groups[key].append(info)
    return groups
