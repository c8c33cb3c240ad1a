"""Ctrl-C goes to the command, not to the worker processes it starts.

A terminal sends SIGINT to every process of the foreground group: our workers too. A worker still importing
its modules then dies with its own KeyboardInterrupt traceback, printed over the command's one-line message.
Processes started inside `workers_ignore_ctrl_c()` inherit SIGINT blocked (the signal mask survives fork and
exec; loky's own resource tracker is started the same way), so they never see Ctrl-C: the command does, and
stops them (joblib terminates its workers when the loop over their results is interrupted).
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def workers_ignore_ctrl_c() -> Iterator[None]:
    """Block SIGINT in this thread while the block runs: the processes it starts inherit the mask. A Ctrl-C that
    arrives meanwhile is not lost: it is raised as soon as the block ends (or at once, where another thread of
    this process takes the signal; Python raises KeyboardInterrupt in the main thread either way)."""
    if not hasattr(signal, "pthread_sigmask"):  # Windows: no signal masks (and no process groups to signal)
        yield
        return
    # Python < 3.14's multiprocessing resource tracker, which loky starts with each worker, *unblocks* SIGINT
    # in the starting thread when it starts the tracker (3.14 restores the mask); once it runs, it leaves the
    # mask alone: so start it first
    from multiprocessing import resource_tracker

    resource_tracker.ensure_running()
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
