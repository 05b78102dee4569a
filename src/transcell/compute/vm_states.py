"""Server states, as Nova names them, and how they show as an API status."""

from __future__ import annotations

ACTIVE = "active"
BUILDING = "building"
STOPPED = "stopped"
RESIZED = "resized"
ERROR = "error"
DELETED = "deleted"

# task states
SCHEDULING = "scheduling"
SPAWNING = "spawning"
NETWORKING = "networking"
POWERING_OFF = "powering-off"
POWERING_ON = "powering-on"
DELETING = "deleting"
RESIZE_PREP = "resize_prep"
RESIZE_MIGRATING = "resize_migrating"
RESIZE_MIGRATED = "resize_migrated"
RESIZE_FINISH = "resize_finish"
RESIZE_REVERTING = "resize_reverting"
RESIZE_CONFIRMING = "resize_confirming"

_RESIZING = {RESIZE_PREP, RESIZE_MIGRATING, RESIZE_MIGRATED, RESIZE_FINISH}
#: While a server is in one of these, a move owns it and a delete must wait.
MOVING_TASK_STATES = frozenset(_RESIZING | {RESIZE_REVERTING, RESIZE_CONFIRMING})

_STATUS = {
    ACTIVE: "ACTIVE",
    BUILDING: "BUILD",
    STOPPED: "SHUTOFF",
    RESIZED: "VERIFY_RESIZE",
    ERROR: "ERROR",
    DELETED: "DELETED",
    "paused": "PAUSED",
    "suspended": "SUSPENDED",
    "rescued": "RESCUE",
    "soft-delete": "SOFT_DELETED",
    "shelved": "SHELVED",
    "shelved_offloaded": "SHELVED_OFFLOADED",
}


def api_status(vm_state: str | None, task_state: str | None) -> str:
    if task_state in _RESIZING and vm_state in (ACTIVE, STOPPED):
        return "RESIZE"
    if task_state == RESIZE_REVERTING and vm_state == RESIZED:
        return "REVERT_RESIZE"
    return _STATUS.get(vm_state or "", "UNKNOWN")


def vm_states_for_status(status: str) -> set[str]:
    """The vm_states a ``status=`` list filter selects."""
    status = status.upper()
    return {vm for vm, name in _STATUS.items() if name == status}
