"""Progress on stderr, the one way every command reports it.

On a terminal a tqdm bar redraws in place. When stderr is not a terminal (a log file, a pipe, CI) a
redrawn bar would write thousands of updates with cursor escapes, so :class:`Progress` writes plain
lines instead: one per finished step, or one per 5% of the steps when there are more than
:data:`MAX_LOG_LINES` of them (a training loop), and always one for the last step. ``enabled=False``
(the commands' ``--no-progress``) writes nothing. Loops inside a reported step (a run's chunks inside a
job's runs, a model's training steps inside an experiment) report only on a terminal (:func:`inner`): in a
log the outer step's line says enough.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import threading
import time
from typing import Iterable, Iterator, Optional, TypeVar

from tqdm import tqdm

MAX_LOG_LINES = 20  # most lines one progress report writes when stderr is not a terminal
HEARTBEAT_SECONDS = 1.0  # a terminal bar's refresh during one long step
LOG_HEARTBEAT_SECONDS = 30.0  # a log's "still running" line during one long step
T = TypeVar("T")


def add_progress_argument(parser: argparse.ArgumentParser) -> None:
    """The ``--no-progress`` flag every command takes."""
    parser.add_argument("--no-progress", action="store_true",
                        help="no progress report on stderr (by default a bar on a terminal, plain lines otherwise)")


def inner(enabled: bool) -> bool:
    """Whether a loop inside a reported step reports too: only on a terminal, where its bar redraws in place."""
    return enabled and sys.stderr.isatty()


class Progress:
    """``total`` steps named ``desc``: a tqdm bar on a terminal, plain lines otherwise (module docstring).

    ``initial``: steps already done (a resumed run). ``total=None`` (a stream of unknown length): a counting
    bar, and in a log one line at most every :data:`LOG_HEARTBEAT_SECONDS`. Use as a context manager, or
    call :meth:`close`.
    """

    def __init__(self, total: Optional[int], desc: str, unit: str = "step", enabled: bool = True, initial: int = 0):
        self.total, self.desc, self.unit, self.done = total, desc, unit, initial
        self.enabled = enabled
        self._start = self._last_line = time.monotonic()
        self._terminal = enabled and sys.stderr.isatty()
        self._bar = tqdm(total=total, desc=desc, unit=unit, initial=initial, leave=False, delay=1.0,
                         disable=not self._terminal)
        self._every = max(1, -(-total // MAX_LOG_LINES)) if total is not None and total > MAX_LOG_LINES else 1

    def update(self, steps: int = 1, note: str = "") -> None:
        """``steps`` more steps finished; ``note`` (e.g. what the step was) goes into the log line."""
        before, self.done = self.done, self.done + steps
        if self._terminal:
            self._bar.update(steps)
            if note:
                self._bar.set_postfix_str(note, refresh=False)
        elif self.enabled and self._log_line_due(before):
            now = time.monotonic()
            self._last_line = now
            suffix = f": {note}" if note else ""
            of = "" if self.total is None else f"/{self.total}"
            print(f"{self.desc}: {self.done}{of} {self.unit}s done ({now - self._start:.1f} s){suffix}",
                  file=sys.stderr, flush=True)

    def _log_line_due(self, before: int) -> bool:
        if self.total is None:
            return time.monotonic() - self._last_line >= LOG_HEARTBEAT_SECONDS
        return self.done // self._every > before // self._every or self.done >= self.total

    @contextlib.contextmanager
    def heartbeat(self, label: str):
        """Keep the report moving while one long step (a compile, a chunk) runs inside the ``with`` block:
        on a terminal ``label`` and its seconds so far refresh every :data:`HEARTBEAT_SECONDS`; in a log a
        "still running" line every :data:`LOG_HEARTBEAT_SECONDS`. A stalled step shows as a growing count
        with no step finishing. Nothing runs when the report is disabled."""
        if not self.enabled:
            yield
            return
        start, stop = time.monotonic(), threading.Event()
        every = HEARTBEAT_SECONDS if self._terminal else LOG_HEARTBEAT_SECONDS

        def tick():
            while not stop.wait(every):
                seconds = time.monotonic() - start
                if self._terminal:
                    self._bar.set_postfix_str(f"{label} {seconds:.0f} s", refresh=True)
                else:
                    print(f"{self.desc}: {label} still running ({seconds:.0f} s)", file=sys.stderr, flush=True)

        thread = threading.Thread(target=tick, daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()

    def close(self) -> None:
        self._bar.close()

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def track(items: Iterable[T], desc: str, unit: str = "step", enabled: bool = True,
          total: Optional[int] = None) -> Iterator[T]:
    """Yield ``items``, reporting one finished step after each (the loop body is the step)."""
    items = list(items) if total is None and not hasattr(items, "__len__") else items
    with Progress(total if total is not None else len(items), desc, unit, enabled) as bar:
        for item in items:
            yield item
            bar.update(1, note=str(item) if isinstance(item, str) else "")
