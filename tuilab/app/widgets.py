"""The dashboard's own widgets: a line that redraws only when it changes, a run's row of sparklines, per-layer
gradient bars, the curves chart, the confusion matrix."""

from __future__ import annotations

import math

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.widgets import Label, Sparkline, Static
from textual_plotext import PlotextPlot

from tuilab.app.live import RunView
from tuilab.views.run_style import drawing_order, legend, line_look, no_color, run_style

STATUS_MARK = {"pending": ("·", "dim"), "running": ("▶", "green"), "paused": ("‖", "yellow"),
               "completed": ("✓", "green"), "diverged": ("✗", "red"), "interrupted": ("■", "yellow"),
               "converged": ("✓", "green"), "out of steps": ("…", "yellow"),
               "reached the minimum, then left it": ("↺", "yellow"), "running out of steps": ("…", "yellow")}
VANISHING = 1e-2
EXPLODING = 1e2


def fmt(value, spec: str = ".3f", none: str = "–") -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return none
    return format(value, spec)


def duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "–"
    s = int(round(seconds))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


def _finite(values) -> list[float]:
    return [v for v in values if isinstance(v, float) and math.isfinite(v)]


class Line(Static):
    """Text that redraws only when it changed: every update of an auto-sized widget costs a layout pass of the
    screen (~30 ms with the dashboard's widgets), ten times a second while a run trains."""

    _shown: tuple | None = None

    def show(self, text: Text) -> None:
        key = (text.plain, tuple((str(s.style), s.start, s.end) for s in text.spans), str(text.style))
        if self._shown != key:
            self._shown = key
            self.update(text)


class ConfusionMatrix(Line):
    """A run's confusion matrix on the test set: counts by true row and predicted column, the diagonal green,
    the errors red; rows named by class where the data set's labels have names ("3 Dress")."""

    def show_matrix(self, heading: str, label: str, m, names=()) -> None:
        text = Text(f"{heading}\n" if heading else "", style="bold")
        text.append(f"\nconfusion matrix of {label} on the test set (rows: true, columns: predicted)\n", style="bold")
        names = names if len(names) == len(m) else ()
        head = max((len(n) for n in names), default=0) + 5
        width = max(len(str(c)) for row in m for c in row) + 1
        text.append(" " * head + "".join(f"{j:>{width}}" for j in range(len(m))) + "\n", style="dim")
        for i, row in enumerate(m):
            text.append(f"{i:>4} {names[i] if names else '':<{head - 5}}", style="dim")
            for j, c in enumerate(row):
                text.append(f"{c:>{width}}", style="bold green" if i == j else ("red" if c else "grey30"))
            text.append("\n")
        self.show(text)


class RunRow(Horizontal):
    """One run: mark, its tag and label in its colour, training-loss sparkline, accuracy sparkline,
    latest figures. Its look says whether the charts show it (dim when not), whether it is focused
    (◆) and whether the run list's cursor is on it (reversed)."""

    DEFAULT_CSS = """
    RunRow { height: 1; }
    RunRow .run-label { width: 24; }
    RunRow Sparkline { width: 1fr; height: 1; }
    RunRow .acc { width: 16; margin-left: 2; }
    RunRow .figures { width: 30; margin-left: 1; }
    """

    class Clicked(Message):
        def __init__(self, key: str):
            super().__init__()
            self.key = key

    def __init__(self, view: RunView, index: int):
        super().__init__(id=f"run-{view.key.replace(':', '-')}", classes="run-row")
        self.view = view
        self.index = index  # the run's colour: its place among all the runs shown since the start
        self.state = ("on", False, False)  # shown in the charts ("on", "off", "dim"), focused, under the cursor
        self._shown: tuple | None = None

    def compose(self) -> ComposeResult:
        look = run_style(self.index)
        colour = None if no_color() else look.rich
        # accuracy: from a dim grey up to the run's colour, so that it does not read as the loss's tail
        dim = None if no_color() else "#4e4e4e"
        yield Label("", classes="run-label")
        yield Sparkline([], classes="loss", summary_function=lambda xs: xs[-1] if xs else 0,
                        min_color=colour, max_color=colour)
        yield Sparkline([], classes="acc", summary_function=max, min_color=dim, max_color=colour)
        yield Label("", classes="figures")

    def on_mount(self) -> None:
        self.show(self.view)

    def on_click(self, event: events.Click) -> None:
        self.post_message(self.Clicked(self.view.key))

    def show(self, view: RunView, state: tuple | None = None) -> None:
        self.view = view
        self.state = state or self.state
        shown = (view.step, len(view.train_loss), view.status, view.paused, view.samples_per_second,
                 view.diverged_at, self.state)
        if shown == self._shown:
            return  # nothing new: no widget touched, nothing to re-render
        self._shown = shown
        on, focused, cursor = self.state
        status = "paused" if view.paused else view.status
        mark, style = STATUS_MARK.get(status, ("?", ""))
        look = run_style(self.index)
        tag_style = None if no_color() else ("grey35" if on != "on" else look.rich)
        name_style = ("bold " if focused else "") + ("grey50" if on != "on" else (tag_style or ""))
        label = Text.assemble((f"{mark}", style), ("◆" if focused else " ", "bold"), (look.tag, tag_style), " ",
                              (view.label[:19], name_style.strip() or None))
        if cursor:
            label.stylize("reverse")
        self.query_one(".run-label", Label).update(label, layout=False)  # fixed sizes (DEFAULT_CSS)
        # no figure yet (pending, compiling, all NaN): a flat baseline; a lone 0.0 drew a full bar
        self.query_one(".loss", Sparkline).data = _finite(view.losses)
        acc = view.val_accuracy.finite_last() or view.test_accuracy.finite_last()
        self.query_one(".acc", Sparkline).data = acc
        if view.status == "diverged" and view.diverged_at:
            figures = Text(f"diverged ep {view.diverged_at[0]} step {view.diverged_at[1]}", style="bold red")
        else:
            last_acc = acc[-1] if acc else math.nan
            figures = Text(f"ep {view.epoch}/{view.epochs} acc {fmt(last_acc, '.1%')} "
                           f"{fmt(view.samples_per_second, ',.0f')}/s")
        self.query_one(".figures", Label).update(figures, layout=False)


class RunList(VerticalScroll):
    """The runs, one row each; it scrolls. With the focus: up/down move its cursor, Enter or v shows or
    hides the run under it in the charts, f focuses it (the screen's keys, which work from anywhere)."""

    BINDINGS = [Binding("up,k", "screen.cursor_run(-1)", "Previous run", show=False),
                Binding("down,j", "screen.cursor_run(1)", "Next run", show=False),
                Binding("enter", "screen.toggle_run", "Show/hide run", show=False)]
    can_focus = True


class Legend(Static):
    """A chart's legend, outside its plot: each run's tag in its colour and its label, wrapped."""

    DEFAULT_CSS = "Legend { height: auto; max-height: 4; padding: 0 1; }"

    def show(self, entries) -> None:
        """entries: (run index, label, dimmed) in the order to list them."""
        cap = self.styles.max_height  # set by the screen to the rows it can spare (fit_to)
        text = legend(entries, max(20, (self.size.width or 80) - 2),
                      max_lines=int(cap.value) if cap is not None and cap.is_cells else None)
        key = text.plain, tuple(e[0] for e in entries), tuple(e[2] for e in entries)
        if key != getattr(self, "_key", None):  # a layout pass only when it changed
            self._key = key
            self.update(text)


class GradBars(Static):
    """Per-layer gradient L2 norms on a log scale, with the first/last ratio and a warning colour."""

    DEFAULT_CSS = "GradBars { width: 1fr; height: 1fr; padding: 0 1; }"

    def show(self, view: RunView | None, epoch: int | None = None) -> None:
        """The norms of `epoch` (the latest when None, or when it is no longer kept)."""
        if view is None or not view.grad_norms:
            self.update(Text("gradient norms appear after the first epoch", style="dim"), layout=False)
            return
        at, norms, ratio = view.epoch, list(view.grad_norms), view.grad_ratio
        if epoch is not None:
            kept = [h for h in view.grad_history if h[0] <= epoch]
            if kept:
                at, norms, ratio = kept[-1][0], list(kept[-1][1]), kept[-1][2]
        logs = [math.log10(n) if n > 0 else -12.0 for n in norms]
        lo, hi = min(min(logs), -6.0), max(max(logs), 0.0)
        width = max(6, (self.size.width or 30) - 22)
        where = f"epoch {at} of {view.epoch}" + ("" if epoch is not None else " ([ ] step)")
        text = Text(f"{view.label}: gradient norm per layer (log), {where}\n", style="bold")
        for l, (n, g) in enumerate(zip(norms, logs, strict=True)):
            filled = int(round((g - lo) / (hi - lo) * width)) if hi > lo else width
            text.append(f"L{l + 1:<2} ")
            text.append("█" * filled, style="cyan")
            text.append("░" * (width - filled), style="grey30")
            text.append(f" {n:8.1e}\n")
        if math.isfinite(ratio) and ratio < VANISHING:
            text.append(f"first/last {ratio:.1e}  vanishing", style="bold red")
        elif math.isfinite(ratio) and ratio > EXPLODING:
            text.append(f"first/last {ratio:.1e}  exploding", style="bold red")
        else:
            text.append(f"first/last {fmt(ratio, '.2g')}  healthy", style="green")
        # its size is its container's (1fr): a layout pass of the screen per update (~0.1-0.3 s with 20 runs'
        # rows) would buy nothing
        self.update(text, layout=False)


def sci(x: float) -> str:
    """A power of ten as people write it: 1e-4, 1e-2, 3e+5 -> 3e5."""
    mantissa, exponent = f"{x:.0e}".split("e")
    return f"{mantissa}e{int(exponent)}"


def log_ticks(lo: float, hi: float) -> list[float]:
    """Ticks for a log axis from lo to hi: 1, 2, 5 times the powers of ten between (at least two)."""
    if not (lo > 0 and hi > 0):
        return [1.0]
    out = [m * 10.0**e for e in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1) for m in (1, 2, 5)]
    inside = [t for t in out if lo <= t <= hi]
    return inside if len(inside) >= 2 else [lo, hi] if hi > lo else [lo]


class CurvesPlot(PlotextPlot):
    """Loss (and accuracy, in %) per epoch, every run in its colour, the level of guessing marked."""

    _drawn_with: tuple | None = None
    lines: tuple = ()  # what it drew last: (run label, epochs, values) a run

    def show(self, runs: list[RunView], what: str = "loss", ks=None, focus: int | None = None,
             classes: int | None = None, hidden: int = 0) -> None:
        """what: "loss" or "accuracy" per epoch, or "lr_range": a range test's smoothed loss against its lr.
        ks: each run's colour index; focus: the position of the run drawn on top, the others dimmed;
        classes: where every run classifies into that many classes by cross-entropy, guessing's level
        (ln C on loss, 100 / C % on accuracy) is drawn as a grey line; hidden: how many runs v took out."""
        self._drawn_with = (runs, what, ks, focus, classes, hidden)
        ks = list(range(len(runs))) if ks is None else list(ks)
        plt = self.plt
        plt.clear_data()
        if what == "lr_range":
            from tuilab.views.lr_range import draw_range_chart

            draw_range_chart(plt, [(r.label, r.range_lrs, r.range_smoothed) for r in runs],
                             [(r.summary.get("lr_range") or {}).get("suggested_lr") for r in runs], ks, focus,
                             legend=False)
            self.refresh()
            return
        if what == "sharpness":
            self._sharpness(runs, ks, focus)
            return
        drawn, last_epoch, scale = False, 1, 100.0 if what == "accuracy" else 1.0
        lines = []
        for i in drawing_order(len(runs), focus):
            r = runs[i]
            acc = r.val_accuracy if r.val_accuracy.finite_last() else r.test_accuracy
            # no more buckets than the plot is wide; each bucket's values in the order they came (app.series)
            xs, ys = (r.train_loss if what == "loss" else acc).coarsened(max(16, self.size.width)).polyline()
            if not xs:
                continue
            colour, marker = line_look(ks[i], focus, i)
            ys = [y * scale for y in ys]
            plt.plot(xs, ys, color=colour, marker=marker)  # its legend is below (Legend)
            lines.append((r.label, xs, ys))
            drawn = True
            last_epoch = max(last_epoch, xs[-1])
        title = "training loss per epoch" if what == "loss" else "accuracy per epoch, %"
        if drawn and classes and classes > 1:
            level = math.log(classes) if what == "loss" else 100.0 / classes
            plt.hline(level, color="gray")
            title += f" (grey: guessing, {level:.3g}{'' if what == 'loss' else ' %'})"
        plt.title(title)
        plt.xlabel("epoch")
        if drawn:
            plt.xlim(1, max(2, last_epoch))  # the axis starts at the first epoch, not at 0 or a thinned point
        else:
            plt.xlim(None, None)
            plt.title("every run is hidden: v on one shows it again" if hidden and not runs
                      else "curves appear after the first epoch")
        self.lines = tuple(lines)
        self.refresh()

    def _sharpness(self, runs, ks, focus) -> None:
        """Each run's sharpness (λ_max of the Hessian) per epoch on a log axis, and its stability threshold
        dotted in the same colour (engine.nn.sharpness). The log is taken here and the ticks named by hand:
        plotext's own log scale rescales its data in place at each build, so a second drawing of the same data
        (a resize, a refresh) took the log of a log."""
        plt = self.plt
        lines, last_epoch, every_y = [], 1, []
        for i in drawing_order(len(runs), focus):
            r = runs[i]
            xs, ys = r.sharpness.coarsened(max(16, self.size.width)).polyline()
            kept = [(x, y) for x, y in zip(xs, ys, strict=True) if y > 0]  # a log axis
            if not kept:
                continue
            colour, marker = line_look(ks[i], focus, i)
            plt.plot([x for x, _ in kept], [math.log10(y) for _, y in kept], color=colour, marker=marker)
            lines.append((r.label, [x for x, _ in kept], [y for _, y in kept]))
            every_y += [y for _, y in kept]
            last_epoch = max(last_epoch, kept[-1][0])
            tx, ty = r.stability_threshold.coarsened(max(16, self.size.width)).polyline()
            limit = [(x, y) for x, y in zip(tx, ty, strict=True) if y > 0]
            if limit:
                plt.plot([x for x, _ in limit], [math.log10(y) for _, y in limit], color=colour, marker="dot")
                every_y += [y for _, y in limit]
        plt.xlabel("epoch")
        if lines:
            ticks = log_ticks(min(every_y), max(every_y))
            plt.yticks([math.log10(t) for t in ticks], [f"{t:g}" for t in ticks])
            plt.title("sharpness, log scale (dotted: 2/η, the edge)")
            plt.xlim(1, max(2, last_epoch))
        else:
            plt.yticks(None)
            plt.xlim(None, None)
            plt.title("no sharpness measured yet (train.sharpness_every = k measures it every k epochs)")
        self.lines = tuple(lines)
        self.refresh()

    def on_resize(self) -> None:
        # drawn while its tab was hidden (0 columns), it was thinned for 16: again at its real width
        if self._drawn_with is not None:
            self.show(*self._drawn_with)


class SweepPlot(PlotextPlot):
    """A sweep's best figure against one of its numeric axes (views.sweep.draw_axis_chart)."""

    def show(self, results, axis: int | None) -> list:
        """Draws the chart; returns its legend's entries (the screen shows them below it)."""
        from tuilab.views.sweep import draw_axis_chart

        plt = self.plt
        plt.clear_data()
        key: list = []
        if results is None or axis is None:
            plt.title("no numeric axis to plot against: see the table")
        else:
            draw_axis_chart(plt, results, axis, key)
        self.refresh()
        return key


class InsidePanel(Static):
    """Inside the optimizer, per layer: weight and gradient norms side by side, the update-to-weight
    ratio on a log scale with the usual band around 1e-3 marked (and words when far outside it), the
    effective per-parameter step of adaptive methods; then the run's scalars (engine.nn.internals), each hidden
    layer's activation health (engine.nn.health) and the gradient's fall in its per-layer factors."""

    DEFAULT_CSS = "InsidePanel { width: 1fr; height: auto; padding: 0 1; }"
    LO, HI = -7.0, 0.0  # the bar's log10 range

    def show(self, view: RunView | None) -> None:
        from tuilab.engine.nn.internals import BAND, TARGET, verdict, why_it_vanishes

        if view is None or not view.inside:
            self._show(Text("the optimizer's internals appear after the first epoch "
                            "(train.internals = true, the default)", style="dim"))
            return
        m = view.inside
        n = sum(1 for k in m if k.startswith("weight_norm_"))
        width = max(10, min(40, (self.size.width or 100) - 70))
        # small epochs record the internals every k-th epoch (engine.training.train.INTERNALS_WORK)
        text = Text(f"{view.label}: inside the optimizer at epoch {m.get('epoch', view.epoch)}\n", style="bold")
        heading = f"update / weight, band {sci(BAND[0])} … {sci(BAND[1])}"  # not "1e-04-1e-02": no minus sign
        text.append(f"{'layer':<6}{'|w|':>9}{'|g|':>9}  {heading:<{width + 2}}{'last':>9}{'mean':>9}  "
                    "effective step p10 / p50 / p90\n", style="dim")
        worst = []
        for l in range(1, n + 1):
            ratio, mean = m.get(f"update_ratio_{l}", math.nan), m.get(f"update_ratio_mean_{l}", math.nan)
            g = view.grad_norms[l - 1] if l <= len(view.grad_norms) else math.nan
            text.append(f"L{l:<5}{fmt(m.get(f'weight_norm_{l}'), '9.1e')}{fmt(g, '9.1e')}  ")
            text.append_text(self._bar(ratio, width, BAND, TARGET))
            style = "green" if BAND[0] <= ratio <= BAND[1] else ("red" if math.isfinite(ratio) else "")
            text.append(f"  {fmt(ratio, '9.1e')}", style=style)
            text.append(f"{fmt(mean, '9.1e')}  ")
            eff = [m.get(f"eff_step_p{p}_{l}") for p in (10, 50, 90)]
            shown = any(e is not None and math.isfinite(e) for e in eff)
            text.append(" / ".join(fmt(e, ".1e") for e in eff) if shown else "–", style="cyan")
            never = m.get(f"no_gradient_{l}", math.nan)
            if never > 0:  # their "step" would be lr / eps: left out of the percentiles, counted here
                text.append(f"  {never:.0%} had no gradient", style="yellow")
            text.append("\n")
            last = view.grad_norms[-1] if view.grad_norms else math.nan
            words = verdict(ratio, g / last if last and math.isfinite(g) else math.nan)
            if words and words not in ("in the usual band", "slow", "fast"):
                worst.append(f"L{l}: {words}")
        parts = []
        if "momentum_t" in m:
            parts.append(f"momentum applied {fmt(m['momentum_t'], '.3f')}")
        corrections = [fmt(m[k], ".3g") for k in ("bias_correction1", "bias_correction2") if k in m]
        if corrections:
            parts.append("bias corrections " + ", ".join(corrections))
        if "radam_rho" in m:
            on = m.get("radam_adaptive") == 1.0
            branch = "adaptive step on" if on else "SGD-like: rho_t <= 5"
            parts.append(f"RAdam rho_t {fmt(m['radam_rho'], '.1f')} ({branch})")
        if "lion_agreement" in m:
            parts.append(f"update sign agrees with the gradient's on {fmt(m['lion_agreement'], '.0%')}")
        if parts:
            text.append("  ".join(parts) + "\n")
        grads = [m.get(f"grad_norm_{l}", math.nan) for l in range(1, n + 1)]  # of the epoch the figures are of
        health = self._health(m, n, grads)
        if health.plain:
            text.append_text(health)
        fall = why_it_vanishes(grads, m, view.activations)
        if fall:
            text.append(fall + "\n", style="bold")
        for w in worst:
            text.append(w + "\n", style="bold red")
        self._show(text)

    @staticmethod
    def _health(m: dict, n_layers: int, grads=()) -> Text:
        """The hidden layers' activation health (engine.nn.health) on the probe rows: mean f'(z), the share
        saturated or dead, the activations' mean and spread; and the gradient's fall split into its per-layer
        factors: the measured |g_l| / |g_l+1| (they multiply to |g_1| / |g_L|), and that over the mean f'(z),
        the rest of it (the weights' gain, the layers' sizes)."""
        from tuilab.engine.nn.health import FIGURES, PROBE_ROWS, gradient_fall

        rows = [(l, [m.get(f"{k}_{l}", math.nan) for k in FIGURES])
                for l in range(1, n_layers)]
        rows = [(l, v) for l, v in rows if math.isfinite(v[0])]
        text = Text()
        if not rows:
            return text
        fall = {}
        if len(grads) == n_layers and all(math.isfinite(g) for g in grads):
            dact = [m.get(f"dact_mean_{l}", math.nan) for l in range(1, n_layers)]
            fall = {n_layers - 1 - k: f for k, f in enumerate(gradient_fall(list(grads), dact))}
        text.append(f"activations on up to {PROBE_ROWS} training rows. Going back from layer l+1 to l the gradient "
                    "is multiplied by 'back' (measured: |g_l| / |g_l+1|) = mean f′(z) × 'gain' (the rest: the "
                    "weights, the inputs' size)\n", style="dim")
        text.append(f"{'layer':<6}{'mean f′(z)':>11}{'saturated':>11}{'dead':>7}{'act mean':>10}{'act sd':>9}"
                    f"{'back':>9}{'gain':>7}\n", style="dim")
        for l, (dact, sat, dead, mean, sd) in rows:  # – (a figure that means nothing here) padded as a number
            text.append(f"L{l:<5}{fmt(dact, '11.3g'):>11}{fmt(sat, '11.0%'):>11}")
            text.append(f"{fmt(dead, '7.0%'):>7}", style="bold red" if dead > 0.1 else "")
            text.append(f"{fmt(mean, '10.3g'):>10}{fmt(sd, '9.3g'):>9}")
            share, d = fall.get(l, (math.nan, math.nan))
            gain = share / d if d > 0 else math.nan
            text.append(f"{fmt(share, '9.2g'):>9}", style="bold" if share < 0.5 else "")
            text.append(f"{fmt(gain, '7.2g'):>7}\n")
        return text

    def _show(self, text: Text) -> None:
        """Its height is its text's: a layout pass only when the number of lines changes."""
        lines = text.plain.count("\n")
        self.update(text, layout=lines != getattr(self, "_lines", None))
        self._lines = lines

    def _bar(self, ratio: float, width: int, band, target) -> Text:
        """A log-scale bar from 1e-7 to 1: the band shaded, 1e-3 marked |, the ratio's end drawn."""
        def at(x: float) -> int:
            return int(round((math.log10(x) - self.LO) / (self.HI - self.LO) * (width - 1)))

        filled = at(min(max(ratio, 10 ** self.LO), 1.0)) + 1 if math.isfinite(ratio) and ratio > 0 else 0
        lo, hi, mark = at(band[0]), at(band[1]), at(target)
        bar = Text()
        for k in range(width):
            char = "█" if k < filled else ("│" if k == mark else "░")
            inside = lo <= k <= hi
            style = ("green" if inside else "yellow") if k < filled else ("grey50" if inside else "grey23")
            bar.append(char, style=style)
        return bar
