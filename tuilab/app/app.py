"""The Textual application: screens, the command palette, starting and stopping live runs."""

from __future__ import annotations

from functools import partial
from pathlib import Path

from textual.app import App
from textual.binding import Binding
from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.scrollbar import ScrollBar, ScrollBarRender

from tuilab.app.live import LiveExperiment
from tuilab.engine.config.presets import load_experiment, preset_catalog
from tuilab.engine.records.run_records import default_out
from tuilab.engine.training.data_cache import DataOptions
from tuilab.errors import TuilabError


class WholeCellScrollBars(ScrollBarRender):
    """Scrollbar thumbs in whole cells. Textual's partial-cell ends ("▁▂▃…") were all a terminal showed of a
    table's scrollbar where its colours were close to the table's (or absent, NO_COLOR): a stray pair of
    sparkline glyphs at a row's right edge."""

    VERTICAL_BARS = [" "] * 8
    HORIZONTAL_BARS = [" "] * 8


ScrollBar.renderer = WholeCellScrollBars  # Textual's documented hook for how scrollbars are drawn


class PresetCommands(Provider):
    """Every preset in the command palette."""

    def _presets(self):
        for group, entries in preset_catalog().items():
            for e in entries:
                yield e.name, f"{group}: {e.description}"

    async def discover(self) -> Hits:
        for name, help_text in self._presets():
            yield DiscoveryHit(f"open {name}", partial(self.app.open_preset, name), help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name, help_text in self._presets():
            score = matcher.match(f"open {name}")
            if score > 0:
                yield Hit(score, matcher.highlight(f"open {name}"), partial(self.app.open_preset, name),
                          help=help_text)


class TuilabApp(App):
    """`make_app()` builds it for the CLI and for the tests alike."""

    CSS_PATH = "app.tcss"
    TITLE = "tuilab"
    COMMANDS = App.COMMANDS | {PresetCommands}
    BINDINGS = [Binding("question_mark", "help", "Help", key_display="?", show=False),
                Binding("q", "quit", "Quit", show=False),
                Binding("S", "save_screen", "Save screen as SVG", show=False)]

    def __init__(self, preset: str | None = None, overrides=(), data: DataOptions | None = None,
                 out_root: str | Path = "runs", records: bool = True, autostart: bool = True,
                 opened=(), sweeps=(), cluster: str | None = None, lr_range: bool | None = None,
                 fair: bool | None = None):
        super().__init__()
        self.lr_range = lr_range  # --lr-range / --no-lr-range, for the preset named on the command line
        self.fair = fair  # --fair / --no-fair, likewise
        self.cluster = cluster  # --cluster: where the runs train (None: here, or TUILAB_CLUSTER)
        self.sweeps = list(sweeps)  # --sweep axes, for the preset named on the command line
        self.opened = [Path(f) for f in opened]  # records folders to show (tuilab open)
        self.initial_preset = preset
        self.overrides = list(overrides)
        self.data_options = data or DataOptions()
        self.out_root = Path(out_root)
        self.records = records
        self.autostart = autostart
        self.lives: list[LiveExperiment] = []
        self.screens_by_preset: dict[str, object] = {}
        self.quitting = False

    def on_mount(self) -> None:
        from tuilab.app.screens.browser import PresetBrowser

        self.push_screen(PresetBrowser())
        if self.opened:
            self.open_records(self.opened)
        elif self.initial_preset:
            self.open_preset(self.initial_preset)

    def open_records(self, folders) -> None:
        """The network dashboard on records folders, each replayed as an experiment beside the others."""
        from tuilab.app.live import ReplayedExperiment
        from tuilab.app.screens.network import NetworkScreen
        from tuilab.app.screens.surface import SurfaceScreen
        from tuilab.engine.records.run_records import read_records

        first = None
        for k, folder in enumerate(folders):
            try:
                rec = read_records(folder)
                experiment = load_experiment(str(Path(folder) / "config.toml"))
            except TuilabError as exc:
                self.notify(str(exc), severity="error", timeout=8)
                continue
            cls = SurfaceScreen if experiment.lab == "surface" else NetworkScreen
            if first is not None and not isinstance(first, cls):
                self.notify(f"{folder}: a {experiment.lab} experiment among others; open it by itself", timeout=8)
                continue
            if first is None:
                first = cls(" + ".join(Path(f).name for f in folders), experiment)
                self.install_screen(first, name=f"records:{folder}")
                self.push_screen(first)
            live = ReplayedExperiment(experiment, f"{Path(folder).name}-{k}", rec)
            self.lives.append(live)
            first.lives.append(live)
            live.worker = self.run_worker(live.run, thread=True, name=live.tag, group="replay",
                                          exit_on_error=False)
            live.thread = _WorkerThread(live.worker)

    # -- presets and runs --

    def open_preset(self, name: str) -> None:
        """Show the preset's dashboard (the same one if it was opened before) and start it."""
        if name in self.screens_by_preset:
            screen = self.screens_by_preset[name]
            if screen is not self.screen:
                self.push_screen(screen)
            return
        try:
            first = name == self.initial_preset
            experiment = load_experiment(name, self.overrides, self.sweeps if first else (),
                                         self.lr_range if first else None, self.fair if first else None)
        except TuilabError as exc:
            self.notify(str(exc), severity="error", timeout=8)
            return
        self.open_experiment(name, experiment)

    def open_experiment(self, name: str, experiment) -> None:
        """A dashboard for a resolved experiment (a preset's, or one made from another: a range test's
        suggestion), started at once unless autostart is off."""
        from tuilab.app.screens.network import NetworkScreen
        from tuilab.app.screens.surface import SurfaceScreen

        cls = SurfaceScreen if experiment.lab == "surface" else NetworkScreen
        screen = cls(name, experiment)
        self.screens_by_preset[name] = screen
        self.install_screen(screen, name=f"preset:{name}")
        self.push_screen(screen)
        if self.autostart:
            self.call_after_refresh(screen.start)

    def start_live(self, experiment, tag: str, out=None, resume: dict | None = None) -> LiveExperiment:
        """Start an experiment in a thread worker; the screen reads its snapshots. With `resume`,
        it continues the records in `out` (opened records), whether or not new records are on."""
        if out is None:
            out = default_out(f"{experiment.name}", self.out_root) if self.records else None
        live = LiveExperiment(experiment, f"{experiment.name}-{tag}", data=self.data_options, out=out,
                              records=out is not None, resume=resume, cluster=self.cluster)
        self.lives.append(live)
        live.worker = self.run_worker(live.run, thread=True, name=live.tag, group="training",
                                      exit_on_error=False)
        live.thread = _WorkerThread(live.worker)
        return live

    def is_running_preset(self, name: str) -> bool:
        screen = self.screens_by_preset.get(name)
        return bool(screen is not None and screen.running)

    # -- actions --

    def action_help(self) -> None:
        from tuilab.app.screens.help import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def action_save_screen(self) -> None:
        """The whole screen as an SVG file, beside the shown experiment's records (else in the current folder)."""
        import time

        from tuilab.views.svg import portable, slug

        screen = self.screen
        outs = [lv.out for lv in getattr(screen, "lives", ()) if getattr(lv, "out", None) is not None]
        folder = Path(outs[0]) if outs else Path.cwd()
        name = f"screen-{slug(getattr(screen, 'preset', None) or 'tuilab')}-{time.strftime('%Y%m%d-%H%M%S')}.svg"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            (folder / name).write_text(portable(self.export_screenshot()), encoding="utf-8")
        except OSError as exc:
            self.notify(f"the screen could not be saved in {folder}: {exc.strerror or exc}", severity="error",
                        timeout=8)
            return
        self.notify(f"the screen saved as {folder / name}", timeout=8)

    def on_unmount(self) -> None:
        """However the app ends, no training thread outlives it and every record is closed."""
        from tuilab.app.live import wait_all

        for live in self.lives:
            live.control.stop()
        wait_all(self.lives, timeout=10.0)

    async def action_quit(self) -> None:
        """Stop every run (each ends within a chunk, ~0.1 s), let the records close, then exit."""
        self.quitting = True
        for live in self.lives:
            live.control.stop()
        for live in self.lives:
            if live.worker is not None:
                await live.worker.wait()
        self.exit(0)


class _WorkerThread:
    """What LiveExperiment expects of its thread, on a Textual worker."""

    def __init__(self, worker):
        self.worker = worker

    def is_alive(self) -> bool:
        return self.worker.state.name in ("PENDING", "RUNNING")

    def join(self, timeout: float | None = None) -> None:
        import time

        end = time.monotonic() + (timeout or 0)
        while self.is_alive() and time.monotonic() < end:
            time.sleep(0.02)


def make_app(preset: str | None = None, overrides=(), **kw) -> TuilabApp:
    return TuilabApp(preset, overrides, **kw)
