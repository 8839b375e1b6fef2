"""The landing screen: presets grouped as Networks, Surfaces and the user's own, with details."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Header, OptionList, Static
from textual.widgets.option_list import Option

from tuilab.app.summary import describe
from tuilab.engine.config.presets import load_experiment, preset_catalog
from tuilab.errors import TuilabError


class PresetBrowser(Screen):
    """Pick a preset; Enter starts it."""

    BINDINGS = [
        Binding("enter", "start", "Start"),
        Binding("question_mark", "app.help", "Help", key_display="?"),
        Binding("q", "app.quit", "Quit"),
    ]

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="browser"):
            yield OptionList(id="presets")
            with VerticalScroll(id="details-box"):
                yield Static(id="details")
        yield Footer()

    def on_mount(self) -> None:
        self.title = "tuilab"
        self.sub_title = "pick a preset, press Enter"
        self.reload()

    def on_screen_resume(self) -> None:
        self.reload()  # back from a dashboard: the ● marks follow what is running

    def reload(self) -> None:
        options: list = []
        self.infos = {}
        for group, entries in preset_catalog().items():
            if not entries:
                continue
            options.append(Option(Text(group, style="bold underline"), disabled=True))
            for e in entries:
                self.infos[e.name] = e
                running = self.app.is_running_preset(e.name) if hasattr(self.app, "is_running_preset") else False
                label = Text.assemble(("● " if running else "  ", "green"), e.name)
                options.append(Option(label, id=e.name))
        presets = self.query_one("#presets", OptionList)
        highlighted = presets.highlighted_option.id if presets.highlighted_option else None
        presets.clear_options()
        presets.add_options(options)
        ids = [o.id for o in options]
        # (the group titles have no id: None "in ids" put the highlight on the first title, and Enter started
        # nothing until an arrow key was pressed)
        first = (ids.index(highlighted) if highlighted is not None and highlighted in ids
                 else next(i for i, o in enumerate(options) if o.id))
        presets.highlighted = first
        presets.focus()

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        self.show_details(event.option.id)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.app.open_preset(event.option.id)

    def action_start(self) -> None:
        option = self.query_one("#presets", OptionList).highlighted_option
        if option is not None and option.id:
            self.app.open_preset(option.id)

    def show_details(self, name: str | None) -> None:
        details = self.query_one("#details", Static)
        if not name:
            details.update("")
            return
        info = self.infos[name]
        text = Text()
        text.append(f"{info.title}\n", style="bold")
        text.append(f"{info.description}\n\n")
        try:
            exp = load_experiment(str(info.path))
        except TuilabError as exc:
            text.append(f"cannot be used: {exc}", style="bold red")
            details.update(text)
            return
        for key, value in describe(exp):
            text.append(f"{key:>15}  ", style="dim")
            text.append(f"{value}\n")
        if len(exp.runs) > 1:
            text.append("\nruns\n", style="dim")
            for r in exp.runs:
                text.append(f"  {r.label}\n")
        text.append(f"\n{info.path.name}", style="dim")
        details.update(text)
