"""Progress of long work, on stderr: a bar on a terminal, plain lines in a log; nothing when EMOZOO_QUIET is set."""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Callable, Iterator

MIN_ITEMS_FOR_BAR = 16
LOG_EVERY_PERCENT = 10  # off a terminal: one line each time another 10 % is done


def quiet() -> bool:
    return bool(os.environ.get("EMOZOO_QUIET"))


def note(message: str) -> None:
    """One line of progress on stderr (a terminal and a log alike), unless EMOZOO_QUIET is set."""
    if not quiet():
        print(message, file=sys.stderr, flush=True)


@contextlib.contextmanager
def progress_bar(total: int, description: str) -> Iterator[Callable[[], None]]:
    if total < MIN_ITEMS_FOR_BAR or quiet():
        yield lambda: None
        return
    if not sys.stderr.isatty():  # a log or a pipe: no bar to redraw, so a plain line every so often
        yield _log_lines(total, description)
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
        transient=True,
    ) as progress:
        task = progress.add_task(description, total=total)
        yield lambda: progress.advance(task)


def _log_lines(total: int, description: str) -> Callable[[], None]:
    started = time.perf_counter()
    done = shown = 0

    def advance() -> None:
        nonlocal done, shown
        done += 1
        percent = done * 100 // total
        if percent >= shown + LOG_EVERY_PERCENT or done == total:
            shown = percent - percent % LOG_EVERY_PERCENT
            note(f"{description}: {done}/{total} ({percent}%, {time.perf_counter() - started:.0f} s)")

    return advance
