"""Ctrl-C reaches the command, not the worker processes it starts (zoo.interrupts)."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading

import pytest

from zoo.interrupts import workers_ignore_ctrl_c

pytestmark = pytest.mark.skipif(not hasattr(signal, "pthread_sigmask"), reason="no signal masks on this platform")

BLOCKED_IN_CHILD = "import signal; print(signal.SIGINT in signal.pthread_sigmask(signal.SIG_BLOCK, []))"


def test_processes_started_inside_never_see_ctrl_c_and_the_command_gets_it_afterwards(ctrl_c_delivered: None) -> None:
    before = signal.pthread_sigmask(signal.SIG_BLOCK, [])
    reached_the_end = False
    with pytest.raises(KeyboardInterrupt):
        with workers_ignore_ctrl_c():
            child = subprocess.run([sys.executable, "-c", BLOCKED_IN_CHILD], capture_output=True, text=True)
            signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)  # Ctrl-C while workers start
            reached_the_end = True  # the Ctrl-C waits until the block ends, then is raised: nothing is lost
    assert reached_the_end
    assert child.stdout.strip() == "True", child.stderr
    assert signal.pthread_sigmask(signal.SIG_BLOCK, []) == before
    outside = subprocess.run([sys.executable, "-c", BLOCKED_IN_CHILD], capture_output=True, text=True)
    assert outside.stdout.strip() == "False", outside.stderr
