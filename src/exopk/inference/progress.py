"""Progress of long runs: a bar on a terminal, plain lines in logs and pipes.

:class:`Progress` is the one progress display of exopk. On a terminal it draws a tqdm bar (rate,
elapsed and remaining time, redrawn in place); when the stream is not a terminal (a log file, a
pipe, a job scheduler's output) it prints a plain line at most every ``interval`` seconds and one
at the end, so that logs stay readable. :func:`chain_status` is the status text of a fit's
chains (iterations, log-posterior, divergences per chain).
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

__all__ = ["Progress", "chain_status"]


class Progress:
    """Count ``done`` of ``total`` steps and show it.

    Parameters
    ----------
    total : int
        Steps of the whole run (for a fit: chains x iterations per chain).
    description : str
        What is counted, printed first (``"MCMC"``).
    stream : file, optional
        Where to write (default ``sys.stderr``).
    interval : float
        Seconds between plain lines when ``stream`` is not a terminal.

    Examples
    --------
    >>> import io
    >>> log = io.StringIO()
    >>> with Progress(10, description="demo", stream=log) as progress:
    ...     progress.update(4, "warming up")
    ...     progress.update(10, "done")
    >>> print(log.getvalue().strip())
    demo: 10/10 (100%) done
    """

    def __init__(self, total: int, *, description: str = "", stream: TextIO | None = None,
                 interval: float = 15.0):
        self.total, self.description, self.interval = int(total), description, interval
        self.stream = sys.stderr if stream is None else stream
        self.done, self._last = 0, time.perf_counter()
        self._bar = None
        isatty = getattr(self.stream, "isatty", None)
        if isatty is not None and isatty():
            from tqdm import tqdm
            self._bar = tqdm(total=self.total, desc=description or None, file=self.stream,
                             dynamic_ncols=True, leave=True)

    def update(self, done: int, status: str = "") -> None:
        """``done`` steps of ``total`` are finished (a count, not an increment)."""
        done = min(int(done), self.total)
        step, self.done = done - self.done, max(done, self.done)
        if self._bar is not None:
            if status:
                self._bar.set_postfix_str(status, refresh=False)
            self._bar.update(max(step, 0))
            return
        now = time.perf_counter()
        if self.done == self.total or now - self._last >= self.interval:
            self._last = now
            label = f"{self.description}: " if self.description else ""
            self.stream.write(f"{label}{self.done}/{self.total} "
                              f"({100 * self.done // max(self.total, 1)}%)"
                              f"{' ' + status if status else ''}\n")
            self.stream.flush()

    def close(self) -> None:
        """End the bar (a terminal's cursor moves to the next line)."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def chain_status(state: dict) -> str:
    """``chain 1: 250/2000 lp -12.3 div 0 | chain 2: ...`` from ``{chain: (done, total, lp,
    divergences)}``."""
    return " | ".join(f"chain {c + 1}: {done}/{total} lp {lp:.1f} div {div}"
                      for c, (done, total, lp, div) in sorted(state.items()))
