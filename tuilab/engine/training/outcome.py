"""What a run of an experiment hands back to whoever started it (headless, the dashboard, resume)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Outcome:
    """What an experiment ended with: its status, the data set used, each run's summary."""

    status: str
    dataset: str
    runs: list[dict] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)
    out: str | None = None
