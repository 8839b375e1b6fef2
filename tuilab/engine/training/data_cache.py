"""The data a network experiment's runs train on: where to look for it, and one copy per distinct ask.

Below the runner and the range test, which both take a DataCache (and the worker side
prepares its own from the same options).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tuilab.engine.config.experiment import RunConfig
from tuilab.engine.data import sets as data_mod
from tuilab.engine.events import Notice


@dataclass
class DataOptions:
    data_dir: str | None = None
    strict: bool = False
    download: bool = True
    mirror: str | None = None  # else TUILAB_DATA_MIRROR, else each set's standard mirrors


class DataCache:
    """Sources and prepared arrays shared by the runs that ask for the same thing."""

    def __init__(self, options: DataOptions, emit):
        self.options = options
        self.emit = emit
        self._sources: dict = {}
        self._prepared: dict = {}
        self.fingerprints: dict = {}  # source key -> tasks.fingerprint, for workers to check their copies
        self.notices: list[str] = []

    def source(self, run: RunConfig) -> data_mod.Source:
        self.get(run)
        d = run.data
        return self._sources[(d.name, d.n_samples, d.noise, d.seed, d.path, d.label, d.classes)][0]

    def get(self, run: RunConfig) -> data_mod.Prepared:
        d, dtype = run.data, run.model.dtype
        skey = (d.name, d.n_samples, d.noise, d.seed, d.path, d.label, d.classes)
        if skey not in self._sources:
            src, notice = data_mod.load_source(
                d.name, data_dir=self.options.data_dir, strict=self.options.strict,
                download=self.options.download, n_samples=d.n_samples, noise=d.noise, seed=d.seed,
                path=d.path, label=d.label, classes=d.classes,
                mirror=self.options.mirror)
            self._sources[skey] = (src, notice)
            if notice:
                self.notices.append(notice)
                self.emit(Notice(notice, "warning"))
        src, notice = self._sources[skey]
        pkey = (skey, d, dtype)
        if pkey not in self._prepared:
            self._prepared[pkey] = data_mod.prepare(
                src, val_fraction=d.val_fraction, test_fraction=d.test_fraction,
                normalize=d.normalize, target=d.target, train_samples=d.train_samples,
                seed=d.seed, dtype=np.dtype(dtype), notice=notice)
        return self._prepared[pkey]
