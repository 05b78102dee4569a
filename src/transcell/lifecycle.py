"""How every long-running transcell command starts, says it is ready and stops.

The embedded cloud, each service process, Placement and the distributed
launcher all answer SIGINT and SIGTERM the same way: a first signal asks for an
orderly stop, a second one ends the process at once, and an orderly stop that
hangs (a request or a thread that never returns) is cut short after a grace
period. Every state change is durable before it is acknowledged, so a stop cut
short is recovered like a crash.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable


class StopSignals:
    """SIGINT/SIGTERM caught from now on: install before a long start-up, so a signal
    during it still leads to an orderly stop once the start-up is over."""

    def __init__(self) -> None:
        self.received = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._on_signal)

    def _on_signal(self, signum: int, _frame: object) -> None:
        if self.received.is_set():  # asked twice: the operator wants out now
            os._exit(128 + signum)
        self.received.set()

    def wait(self) -> None:
        while not self.received.wait(1.0):
            pass


def pid_exists(pid: int) -> bool:
    """Whether a process ``pid`` exists on this machine (stopped counts, ended does not).

    A process of another user still exists: signalling it is refused, not missed.
    """
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _overdue(grace: float) -> None:
    print(f"transcell: still stopping after {grace:.0f}s; exiting now", file=sys.stderr,
          flush=True)
    os._exit(1)


def serve_until_stopped(banner: str, stop: Callable[[], None],
                        signals: StopSignals | None = None,
                        grace: float | None = None) -> int:
    """Print ``banner`` and ``ready``, wait for a stop signal, then ``stop()`` within
    ``grace`` seconds (default ``[wsgi] shutdown_timeout`` + 5)."""
    from transcell.conf import CONF
    signals = signals or StopSignals()
    print(banner, flush=True)
    print("ready", flush=True)
    signals.wait()
    grace = grace if grace is not None else CONF.wsgi.shutdown_timeout + 5
    watchdog = threading.Timer(grace, _overdue, args=(grace,))
    watchdog.daemon = True
    watchdog.start()
    stop()
    return 0
