"""Ctrl-Z in single-program mode: superd stops with its program, like one job.

In a terminal the program owns the foreground (``spawn._take_terminal``), so
Ctrl-Z stops the program alone, and the shell, which waits for superd, would
never get the terminal back. When the program is stopped by the terminal
(SIGTSTP, SIGTTIN, SIGTTOU) while it holds the foreground, superd takes the
terminal back and stops itself: the shell sees its job stopped. When the job
is continued (``fg``: superd is in the foreground again), superd hands the
terminal back to the program and continues it; with ``bg`` the program is
continued in the background.
"""

from __future__ import annotations

import logging
import os
import signal

log = logging.getLogger("superd")

TERMINAL_STOPS = frozenset({signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU})


def follow_stop(tty: int, pid: int, status: int) -> None:
    """The reaper saw ``pid`` stopped (``status`` from waitpid with WUNTRACED)."""
    if os.WSTOPSIG(status) not in TERMINAL_STOPS:
        return  # a kill -STOP from someone: not a job-control stop of the terminal
    try:
        group = os.getpgid(pid)
        if os.tcgetpgrp(tty) != group:
            return
        os.tcsetpgrp(tty, os.getpgrp())  # SIGTTOU is ignored in single-program mode
    except OSError:
        return
    log.debug("the program stopped (SIG%s): stopping superd too", signal.Signals(os.WSTOPSIG(status)).name[3:])
    os.kill(os.getpid(), signal.SIGSTOP)
    # Continued: by fg (the terminal's foreground is ours again) or by bg.
    try:
        if os.tcgetpgrp(tty) == os.getpgrp():
            os.tcsetpgrp(tty, group)
    except OSError:
        pass
    try:
        os.killpg(group, signal.SIGCONT)
    except ProcessLookupError:
        pass
