"""Points where failure-injection tests can break or pause a running cloud.

A test that kills a process "right after the 202" or "between two steps of a
move" needs the process to be exactly there when the signal lands. These
points look for files under ``STATE/faults/saga/`` (nothing else turns them
on): ``<point>`` makes the point raise once, ``hold-<point>`` (or
``hold-<point>@<subject>``, for one server) makes it wait, and it writes
``reached-<point>`` (or ``reached-<point>@<subject>``) while it waits. With no
state directory, or no such files, each point is one ``stat`` call.
"""

from __future__ import annotations

import os
import time

from transcell import exception


class StepFault(exception.TranscellError):
    msg_fmt = "Injected failure in move step %(step)s"


def _fault_dir() -> str | None:
    from transcell.conf import CONF
    if not CONF.state_dir:
        return None
    return os.path.join(CONF.state_dir, "faults", "saga")


def check_fault(point: str, subject: str | None = None) -> None:
    """Raise if ``STATE/faults/saga/<point>`` exists (consumed on use).

    With a ``subject`` (a server's uuid), ``always-<point>@<subject>`` also
    raises, every time and for that server only: a move that keeps failing
    however often it is retried.
    """
    base = _fault_dir()
    if base is None:
        return
    if subject is not None:
        try:
            with open(os.path.join(base, f"always-{point}@{subject}")) as fh:
                message = fh.read().strip()
        except FileNotFoundError:
            pass
        else:
            raise StepFault(message or None, step=point)
    path = os.path.join(base, point)
    try:
        with open(path) as fh:
            message = fh.read().strip()
        os.unlink(path)
    except FileNotFoundError:
        return
    raise StepFault(message or None, step=point)


def hold_point(point: str, subject: str) -> None:
    """Wait while ``hold-<point>@<subject>`` or ``hold-<point>`` exists.

    ``subject`` is what the test knows the work by (a server's uuid); the
    ``reached-`` file it writes holds it, so a test holding every server at
    one point can tell which arrived.
    """
    base = _fault_dir()
    if base is None:
        return
    for name in (f"{point}@{subject}", point):
        hold = os.path.join(base, f"hold-{name}")
        if not os.path.exists(hold):
            continue
        with open(os.path.join(base, f"reached-{name}"), "w") as fh:
            fh.write(subject)
        while os.path.exists(hold):
            time.sleep(0.05)
        return
