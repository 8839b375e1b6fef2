"""Edit a run as a modal form; checked inline by the same rules as presets; starts as a new run."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select, Static

from tuilab.app.edit_form import experiment_from_form
from tuilab.app.edit_form import field_text as _text
from tuilab.engine.data import sets as data_mod
from tuilab.engine.nn.model import HIDDEN_ACTIVATIONS, INITIALISERS
from tuilab.engine.nn.optim import OPTIMIZER_NAMES, REGISTRY
from tuilab.errors import TuilabError


class EditRun(ModalScreen):
    """The form; dismisses with a one-run Experiment, or None when cancelled."""

    BINDINGS = [Binding("escape", "cancel", "Cancel"), Binding("ctrl+s", "submit", "Start")]

    def __init__(self, experiment):
        super().__init__()
        self.base = experiment
        self.source_run = experiment.runs[-1]
        self.lab = experiment.lab

    def compose(self) -> ComposeResult:
        t = self.source_run.tables
        o = t["optimizer"]
        with Vertical(id="edit-dialog"):
            yield Label("Edit a run: it starts beside the others", id="edit-title")
            yield Label("ctrl+s start · Esc cancel · Tab next field; the form scrolls", id="edit-keys")
            # the fields people change most first; the optimizer's other hyperparameters last
            with VerticalScroll(id="edit-fields"):
                yield from self._row("optimizer", Select([(n, n) for n in OPTIMIZER_NAMES], value=o["name"],
                                                         allow_blank=False, id="f-optimizer"))
                yield from self._row("learning rate", Input(_text(o["lr"]), id="f-lr"))
                if self.lab == "surface":
                    s = t["surface"]
                    yield from self._row("steps", Input(str(s["steps"]), id="f-steps"))
                    yield from self._row("start x", Input(_text(s["start"][0]), id="f-x"))
                    yield from self._row("start y", Input(_text(s["start"][1]), id="f-y"))
                else:
                    m, tr, d = t["model"], t["train"], t["data"]
                    act = m["activation"] if isinstance(m["activation"], str) else m["activation"][0]
                    yield from self._row("epochs", Input(str(tr["epochs"]), id="f-epochs"))
                    yield from self._row("batch size", Input(str(tr["batch_size"]), id="f-batch"))
                    yield from self._row("hidden sizes", Input(", ".join(map(str, m["hidden"])), id="f-hidden"))
                    yield from self._row("activation", Select([(a, a) for a in HIDDEN_ACTIVATIONS], value=act,
                                                              allow_blank=False, id="f-activation"))
                    yield from self._row("init", Select([(i, i) for i in INITIALISERS], value=m["init"],
                                                        allow_blank=False, id="f-init"))
                    yield from self._row("data set", Select([(n, n) for n in data_mod.DATASETS],
                                                            value=d["name"], allow_blank=False, id="f-data"))
                yield Vertical(id="hyper")
            yield Static("", id="edit-error")
            with Horizontal(id="edit-buttons"):
                yield Button("Start", variant="primary", id="edit-start")
                yield Button("Cancel", id="edit-cancel")

    def _row(self, name: str, widget) -> ComposeResult:
        with Horizontal(classes="edit-row"):
            yield Label(name, classes="edit-label")
            yield widget

    def on_mount(self) -> None:
        self._fill_hyper(self.source_run.optimizer.name)
        self.query_one("#f-lr", Input).focus()

    def _fill_hyper(self, name: str) -> None:
        box = self.query_one("#hyper", Vertical)
        box.remove_children()
        current = self.source_run.tables["optimizer"]  # as the preset spells it
        values = current if current["name"] == name else REGISTRY[name].defaults
        rows = []
        for key in REGISTRY[name].defaults:
            if key in ("lr", "demon_steps"):
                continue
            row = Horizontal(Label(key, classes="edit-label"),
                             Input(_text(values.get(key, REGISTRY[name].defaults[key])), id=f"h-{key}"),
                             classes="edit-row")
            rows.append(row)
        box.mount_all(rows)

    def on_select_changed(self, event: Select.Changed) -> None:
        if event.select.id == "f-optimizer":
            self._fill_hyper(str(event.value))
        self.query_one("#edit-error", Static).update("")

    def on_input_changed(self, event: Input.Changed) -> None:
        self.query_one("#edit-error", Static).update("")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.action_submit()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "edit-start":
            self.action_submit()
        else:
            self.action_cancel()

    def action_cancel(self) -> None:
        self.dismiss(None)

    def _text_of(self, wid: str) -> str:
        return str(self.query_one(f"#{wid}", Input).value)

    def build(self):
        """The edited experiment, or a TuilabError saying what is wrong (edit_form's rules)."""
        form = {"optimizer": str(self.query_one("#f-optimizer", Select).value), "lr": self._text_of("f-lr")}
        if self.lab == "surface":
            form.update(steps=self._text_of("f-steps"), x=self._text_of("f-x"), y=self._text_of("f-y"))
        else:
            form.update(batch=self._text_of("f-batch"), epochs=self._text_of("f-epochs"),
                        hidden=self._text_of("f-hidden"),
                        activation=str(self.query_one("#f-activation", Select).value),
                        init=str(self.query_one("#f-init", Select).value),
                        data=str(self.query_one("#f-data", Select).value))
        hyper = {inp.id.removeprefix("h-"): str(inp.value) for inp in self.query("#hyper Input").results(Input)}
        return experiment_from_form(self.base, form, hyper)

    def action_submit(self) -> None:
        try:
            experiment = self.build()
        except TuilabError as exc:
            self.query_one("#edit-error", Static).update(str(exc).removeprefix("edit: "))
            return
        self.dismiss(experiment)
