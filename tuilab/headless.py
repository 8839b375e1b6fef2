"""Runs without a screen: progress on stderr (a live bar on a terminal, a line per epoch in a
log), a table of the runs at the end on stdout, records on disk."""

from __future__ import annotations

import math
import re
import signal
import sys
import time

from tuilab.engine.events import Control, Diverged, EpochEnd, Finished, Notice, Phase, Progress, Started
from tuilab.engine.records.results import COLUMNS, NUMERIC, cell, chosen_line, result_rows


def _duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class ProgressPrinter:
    """Turns engine events into lines (and, on a terminal, a bar redrawn in place)."""

    def __init__(self, stream=None, n_runs: int = 1, live: bool | None = None, min_interval: float = 0.1):
        self.stream = stream or sys.stderr
        self.live = self.stream.isatty() if live is None else live
        self.n_runs = n_runs
        self.min_interval = min_interval
        self.started: dict[int, Started] = {}
        self.last_metrics: dict[int, dict] = {}
        self._last_draw = 0.0
        self._last_epoch_line = 0.0
        self._bar_shown = False

    def _line(self, text: str) -> None:
        if self._bar_shown:
            self.stream.write("\r\x1b[2K")
            self._bar_shown = False
        self.stream.write(text + "\n")
        self.stream.flush()

    def not_begun(self, runs, out) -> None:
        """A line for each run a stop came before (it never started, so it said nothing): the next command."""
        waiting = [i for i, r in enumerate(runs) if r.get("status") == "interrupted" and not r.get("epochs_done")
                   and i not in self.started]
        for i in waiting:
            label = runs[i].get("label") or f"run {i + 1}"
            self._line(f"[{i + 1}/{self.n_runs}] {label}: not begun" if self.n_runs > 1 else f"{label}: not begun")
        if waiting:
            self._line(f"tuilab resume {out} trains what did not finish")

    def _name(self, run: int) -> str:
        s = self.started.get(run)
        label = s.label if s else f"run {run + 1}"
        return f"[{run + 1}/{self.n_runs}] {label}" if self.n_runs > 1 else label

    def __call__(self, event) -> None:
        if isinstance(event, Phase):  # a fair race's tuning, then its race: runs numbered afresh
            self.n_runs = len(event.experiment.runs)
            self.started.clear()
            self.last_metrics.clear()
            return
        if isinstance(event, Notice):
            prefix = "note" if event.category != "warning" else "warning"
            self._line(f"tuilab: {prefix}: {event.text}")
        elif isinstance(event, Started):
            self.started[event.run] = event
            if event.first_epoch:
                done, total = event.first_epoch, event.epochs
                self._line(f"{self._name(event.run)}: " + (f"finished already ({done} of {total} epochs): nothing "
                                                            "to train" if done >= total else
                                                            f"goes on after epoch {done} of {total}"))
                return
            self._line(f"{self._name(event.run)}: {event.optimizer} on {event.dataset}, "
                       f"network {'-'.join(map(str, event.sizes))} ({event.n_params:,} parameters), "
                       f"{event.epochs} epoch{'s' if event.epochs != 1 else ''} of {event.steps_per_epoch} steps")
        elif isinstance(event, Progress):
            if self.live:
                now = time.monotonic()
                if now - self._last_draw >= self.min_interval:
                    self._last_draw = now
                    self._draw(event)
        elif isinstance(event, EpochEnd):
            self.last_metrics[event.run] = event.metrics
            s = self.started.get(event.run)
            now = time.monotonic()
            # in a log every epoch has its line; on a terminal the bar carries fast epochs
            if (not self.live or now - self._last_epoch_line >= 0.5 or event.epoch == 1
                    or (s is not None and event.epoch == s.epochs)):
                self._last_epoch_line = now
                self._line(self._epoch_line(event))
        elif isinstance(event, Diverged):
            self._line(f"{self._name(event.run)}: diverged at epoch {event.epoch}, step {event.step} "
                       f"(loss {event.loss}); its records keep the epochs before")
        elif isinstance(event, Finished):
            if event.status == "interrupted":
                self._line(f"{self._name(event.run)}: stopped after {event.summary.get('epochs_done', 0)} "
                           "epochs")
            elif event.status == "pruned":
                self._line(f"{self._name(event.run)}: pruned after {event.summary.get('epochs_done', 0)} epochs "
                           f"(val loss {cell(event.summary.get('val_loss'))})")

    def _epoch_line(self, e: EpochEnd) -> str:
        m = e.metrics
        s = self.started.get(e.run)
        total = s.epochs if s else "?"
        acc = m.get("val_accuracy")
        parts = [f"{self._name(e.run)}: epoch {e.epoch}/{total}", f"loss {cell(m['train_loss'])}"]
        if acc is not None and not math.isnan(acc):
            parts.append(f"val acc {cell(acc, '.2%')}")
        elif not math.isnan(m.get("val_loss", math.nan)):
            parts.append(f"val loss {cell(m['val_loss'])}")
        if not math.isnan(m.get("test_accuracy", math.nan)):
            parts.append(f"test acc {cell(m['test_accuracy'], '.2%')}")
        parts.append(f"{m['samples_per_second']:,.0f} samples/s")
        parts.append(f"grad ratio {cell(m.get('grad_ratio'), '.2g')}")
        if math.isfinite(m.get("sharpness", math.nan)):  # train.sharpness_every (engine.nn.sharpness)
            limit = m.get("stability_threshold", math.nan)
            parts.append(f"sharpness {cell(m['sharpness'], '.3g')}"
                         + (f" (stable below {cell(limit, '.3g')})" if math.isfinite(limit) else ""))
        ratios = []  # the last step's update-to-weight ratio per layer, in the epochs that record them
        while f"update_ratio_{len(ratios) + 1}" in m:
            ratios.append(m[f"update_ratio_{len(ratios) + 1}"])
        if ratios:
            parts.append("update/weight " + " ".join(cell(r, ".1e") for r in ratios))
        dact = []  # the hidden layers' mean f'(z), first to last (engine.nn.health), and the dead ReLU units
        while f"dact_mean_{len(dact) + 1}" in m:
            dact.append(m[f"dact_mean_{len(dact) + 1}"])
        if dact:
            parts.append("f'(z) " + " ".join(cell(d, ".2g") for d in dact))
        dead = [m.get(f"dead_{l + 1}", math.nan) for l in range(len(dact))]
        if any(d > 0 for d in dead if math.isfinite(d)):
            parts.append("dead " + " ".join(f"{d:.0%}" if math.isfinite(d) else "-" for d in dead))
        return "  ".join(parts)

    def _draw(self, p: Progress) -> None:
        s = self.started.get(p.run)
        frac = p.step / p.total_steps if p.total_steps else 0.0
        width = 24
        filled = int(round(frac * width))
        bar = "#" * filled + "." * (width - filled)
        eta = (p.total_steps - p.step) * p.elapsed / p.step if p.step else math.inf
        acc = self.last_metrics.get(p.run, {}).get("val_accuracy", math.nan)
        text = (f"{self._name(p.run)} epoch {p.epoch}/{s.epochs if s else '?'} [{bar}] {frac:4.0%} "
                f"loss {p.loss:.4f} acc {cell(acc, '.1%')} {p.samples_per_second:,.0f}/s "
                f"ETA {_duration(eta)}")
        self.stream.write("\r\x1b[2K" + text[:200])
        self.stream.flush()
        self._bar_shown = True

    def close(self) -> None:
        if self._bar_shown:
            self.stream.write("\r\x1b[2K")
            self.stream.flush()
            self._bar_shown = False


def headline(title: str, dataset: str | None) -> str:
    """A preset's title with the data set said once: "Two spirals" (it names it already), "Deep ReLU net:
    the fix (digits)", and "Shallow sigmoid net on MNIST" that fell back to another set as "Shallow
    sigmoid net (fashion-mnist)"."""
    if not dataset or dataset == "?":
        return title

    def plain(text):
        return re.sub(r"[^a-z0-9]", "", text.lower())

    if plain(dataset) in plain(title):
        return title
    from tuilab.engine.data.sets import DATASETS

    named = re.search(r"\s+on\s+([\w-]+)$", title)  # "... on MNIST": a set these runs did not get
    if named and plain(named.group(1)) in {plain(d) for d in DATASETS}:
        title = title[:named.start()]
    return f"{title} ({dataset})"


def results_table(runs: list[dict]) -> str:
    """The runs as aligned text, best first (the rows: engine.records.results)."""
    rows = result_rows(runs)
    widths = [max(len(h), *(len(row[k]) for row in rows)) for k, h in enumerate(COLUMNS)]

    def line(cells):
        return "  ".join(c.rjust(w) if k in NUMERIC else c.ljust(w)
                         for k, (c, w) in enumerate(zip(cells, widths, strict=True))).rstrip()

    chosen = chosen_line(runs)
    return "\n".join([line(COLUMNS), line(["-" * w for w in widths]), *map(line, rows), *([chosen] if chosen else [])])


class InterruptToStop:
    """While active, the first Ctrl+C asks the run to stop cleanly; a second one quits at once."""

    def __init__(self, control: Control, say):
        self.control = control
        self.say = say
        self._old = None

    def _handler(self, signum, frame):
        if self.control.stop_requested.is_set():
            raise KeyboardInterrupt
        self.control.stop()
        self.say("tuilab: stopping after this chunk and keeping the records (Ctrl+C again to quit now)")

    def __enter__(self):
        self._old = signal.signal(signal.SIGINT, self._handler)
        return self

    def __exit__(self, *exc):
        signal.signal(signal.SIGINT, self._old)
        return False


EXIT_INTERRUPTED = 130
EXIT_FAILED = 1  # a run whose worker was lost twice: the others' results stand, but not all are there


def print_sweep(folder, stdout, chart: bool = True) -> None:
    """The sweep's grouped table, heat table and charts, from its records (every epoch's figures)."""
    from tuilab.engine.records.run_records import read_records
    from tuilab.engine.records.sweep_results import from_records
    from tuilab.views.sweep import sweep_text

    results = from_records(read_records(folder))
    if results is not None:
        print(sweep_text(results, chart=chart), file=stdout)


def run_headless(experiment, *, out, data_options, jobs: int = 1, stream=None, stdout=None,
                 resume: dict | None = None, cluster: str | None = None) -> int:
    """Run a preset with no screen; returns the process exit code."""
    from tuilab.engine.records.run_records import RunRecords

    stdout = stdout or sys.stdout
    control = Control()
    printer = ProgressPrinter(stream, n_runs=len(experiment.runs))
    records = RunRecords(out)
    with InterruptToStop(control, printer._line):
        if experiment.lab == "surface":
            from tuilab.engine.surfaces.runner import run_surfaces

            outcome = run_surfaces(experiment, printer, control, records=records)
        elif experiment.race is not None:
            from tuilab.engine.training.race import run_race

            outcome = run_race(experiment, printer, control, data=data_options, out=out, jobs=jobs, cluster=cluster)
        else:
            from tuilab.engine.training.runner import run_network

            outcome = run_network(experiment, printer, control, data=data_options, records=records,
                                  jobs=jobs, resume=resume, cluster=cluster)
    if experiment.lab != "surface" and outcome.status == "interrupted":
        printer.not_begun(outcome.runs, outcome.out)
    printer.close()
    if experiment.lab == "surface":
        from tuilab.views.surface import print_surface_results

        print_surface_results(experiment, outcome, stdout)
        if outcome.atlas is not None:
            from tuilab.views.atlas import atlas_report
            from tuilab.views.run_style import no_color

            colour = hasattr(stdout, "isatty") and stdout.isatty() and not no_color()
            print("\n" + atlas_report(outcome.atlas, mono=not colour), file=stdout)
    elif experiment.race is not None:
        from tuilab.views.race import race_text

        print(f"\n{headline(experiment.title, outcome.dataset)}", file=stdout)
        print(race_text(outcome.result), file=stdout)
    elif experiment.lr_range is not None:
        from tuilab.engine.training.lr_range import curves_of
        from tuilab.views.lr_range import range_text

        print(f"\n{headline(experiment.title, outcome.dataset)}: range test {outcome.status}", file=stdout)
        print(range_text(experiment.name, outcome.runs, curves_of(outcome.out, outcome.runs)), file=stdout)
    else:
        print(f"\n{headline(experiment.title, outcome.dataset)}: {outcome.status}", file=stdout)
        print(results_table(outcome.runs), file=stdout)
        if experiment.sweep is not None and experiment.sweep.axes:
            print_sweep(outcome.out, stdout)
    print(f"records: {outcome.out}", file=stdout)
    return {"interrupted": EXIT_INTERRUPTED, "failed": EXIT_FAILED}.get(outcome.status, 0)
