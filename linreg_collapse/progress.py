"""Progress that keeps moving while one long blocking call runs (a chunk's compile and run)."""

from __future__ import annotations

import contextlib
import threading
import time

from tqdm import tqdm

HEARTBEAT_SECONDS = 1.0


@contextlib.contextmanager
def heartbeat(bar: tqdm, label: str, every: float = HEARTBEAT_SECONDS):
    """Show ``label`` and the seconds spent in the ``with`` block on ``bar``'s postfix, refreshed every
    ``every`` seconds from a daemon thread: a slow chunk shows a growing count, a stalled one is visible
    as a count that keeps growing with no chunk finishing. Nothing runs for a disabled bar."""
    if bar.disable:
        yield
        return
    start = time.monotonic()
    stop = threading.Event()

    def tick():
        while not stop.wait(every):
            bar.set_postfix_str(f"{label} {time.monotonic() - start:.0f} s", refresh=True)

    thread = threading.Thread(target=tick, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
