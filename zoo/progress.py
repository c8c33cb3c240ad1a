"""Progress bars for long work, on stderr, quiet when output is not a terminal or EMOZOO_QUIET is set."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator

MIN_ITEMS_FOR_BAR = 16


@contextlib.contextmanager
def progress_bar(total: int, description: str) -> Iterator[Callable[[], None]]:
    show = total >= MIN_ITEMS_FOR_BAR and sys.stderr.isatty() and not os.environ.get("EMOZOO_QUIET")
    if not show:
        yield lambda: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
        transient=True,
    ) as progress:
        task = progress.add_task(description, total=total)
        yield lambda: progress.advance(task)
