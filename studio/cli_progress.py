"""The terminal view of a job's events: a tqdm progress bar on stderr."""

from __future__ import annotations

import sys

from tqdm import tqdm

from studio.core.events import Event, Log, Metric, Progress, Trial


class TerminalView:
    """Draws ``Progress`` as a bar, the latest epoch metrics beside it, logs above it."""

    def __init__(self, quiet: bool = False, warnings: bool = True) -> None:
        # Scripts read stderr for the one-line error: draw and narrate only for a person.
        self.quiet = quiet or not sys.stderr.isatty()
        self.warnings = warnings  # False: the caller prints them itself, after its result
        self.bar: tqdm | None = None
        self.metrics: dict[str, float] = {}

    def show(self, event: Event) -> None:
        if self.quiet:
            return
        if isinstance(event, Progress):
            if self.bar is None or (event.total and self.bar.total != event.total):
                self._new_bar(event.total)
            assert self.bar is not None
            self.bar.set_description(event.stage, refresh=False)
            self.bar.n = event.current
            if self.metrics:
                self.bar.set_postfix(self.metrics, refresh=False)
            self.bar.refresh()
        elif isinstance(event, Metric) and event.name != "batch_loss":
            self.metrics[event.name] = round(event.value, 4)
        elif isinstance(event, Trial) and event.state != "running":
            score = f"{event.metric} {event.value:.4f}" if event.value is not None else \
                event.state
            best = (f"; best: trial {event.best_number}, {event.best_value:.4f}"
                    if event.best_value is not None else "")
            tqdm.write(f"trial {event.number:>3} {event.family:<14} {score}{best}",
                       file=sys.stderr)
            self.metrics.clear()
        elif isinstance(event, Log) and (self.warnings or event.level != "warning"):
            tqdm.write(event.message, file=sys.stderr)

    def _new_bar(self, total: float) -> None:
        if self.bar is not None:
            self.bar.close()
        self.bar = tqdm(total=total or None, file=sys.stderr, leave=False, dynamic_ncols=True,
                        bar_format="{desc:<9} {bar} {n:.0f}/{total:.0f}{postfix}",
                        disable=self.quiet)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
