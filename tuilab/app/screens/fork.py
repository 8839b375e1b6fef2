"""Fork a run (F): which epoch it starts from and what changes, checked as `tuilab fork` checks them; dismisses
with the fork's (experiment, folder), laid out and ready to resume, or None."""

from __future__ import annotations

from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Static

from tuilab.engine.config.overrides import parse_override
from tuilab.engine.records.fork import make_fork
from tuilab.errors import TuilabError


class ForkRun(ModalScreen):
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, folder: str | Path, label: str, epochs: list[int]):
        super().__init__()
        self.folder = Path(folder)
        self.label = label
        self.epochs = epochs

    def compose(self) -> ComposeResult:
        with Vertical(id="fork-dialog"):
            yield Label(f"Fork {self.label}", id="fork-title")
            yield Static(f"A new run from its checkpoint at an epoch's end (parameters, optimizer state, minibatch "
                         f"order), with settings changed, in a folder beside {self.folder.name}. Fork points: "
                         f"epochs {', '.join(map(str, self.epochs))}.", id="fork-help")
            yield Label("from the end of epoch")
            default = self.epochs[len(self.epochs) // 2] if self.epochs else 0
            yield Input(str(default), id="fork-epoch")
            yield Label("changes (KEY=VALUE, space between)")
            yield Input(placeholder="optimizer.lr=0.003 train.epochs=20", id="fork-changes")
            yield Static("", id="fork-error")
            yield Label("Enter start · Esc cancel", id="fork-keys")

    def on_mount(self) -> None:
        self.query_one("#fork-changes", Input).focus()

    def action_cancel(self) -> None:
        self.dismiss(None)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        error = self.query_one("#fork-error", Static)
        text = self.query_one("#fork-epoch", Input).value.strip()
        if not text.isdigit():
            error.update(f"the epoch must be a whole number, one of {', '.join(map(str, self.epochs))}")
            return
        try:
            changes = [parse_override(part) for part in self.query_one("#fork-changes", Input).value.split()]
            experiment, out = make_fork(self.folder, int(text), changes, self.label)
        except TuilabError as exc:
            error.update(str(exc))
            return
        self.dismiss((experiment, out))
