"""Guest power states as the Compute API reports them.

The integers are part of the API (``OS-EXT-STS:power_state``), so they keep the
values clients already know; the gaps in the numbering are deliberate.
"""

from __future__ import annotations

NOSTATE = 0
RUNNING = 1
PAUSED = 3
SHUTDOWN = 4
CRASHED = 6
SUSPENDED = 7

STATE_MAP: dict[int, str] = {
    NOSTATE: "pending",
    RUNNING: "running",
    PAUSED: "paused",
    SHUTDOWN: "shutdown",
    CRASHED: "crashed",
    SUSPENDED: "suspended",
}

ALL_STATES = frozenset(STATE_MAP)


def name(state: int) -> str:
    """Readable name for logs and CLI output; unknown values stay visible rather than fail."""
    return STATE_MAP.get(state, f"unknown({state})")
