"""Server states, as Nova names them, and how they show as an API status."""

from __future__ import annotations

ACTIVE = "active"
BUILDING = "building"
STOPPED = "stopped"
RESIZED = "resized"
ERROR = "error"
DELETED = "deleted"
PAUSED = "paused"
SUSPENDED = "suspended"
RESCUED = "rescued"
SOFT_DELETED = "soft-delete"

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
IMAGE_SNAPSHOT = "image_snapshot"
IMAGE_BACKUP = "image_backup"
IMAGE_PENDING_UPLOAD = "image_pending_upload"
IMAGE_UPLOADING = "image_uploading"
REBUILDING = "rebuilding"
REBUILD_SPAWNING = "rebuild_spawning"
#: A snapshot or backup of the server is being taken (the server stays as it was).
IMAGE_TASK_STATES = (IMAGE_SNAPSHOT, IMAGE_BACKUP, IMAGE_PENDING_UPLOAD, IMAGE_UPLOADING)
REBUILD_TASK_STATES = (REBUILDING, REBUILD_SPAWNING)
REBOOTING = "rebooting"
REBOOT_PENDING = "reboot_pending"
REBOOT_STARTED = "reboot_started"
REBOOTING_HARD = "rebooting_hard"
REBOOT_PENDING_HARD = "reboot_pending_hard"
REBOOT_STARTED_HARD = "reboot_started_hard"
PAUSING = "pausing"
UNPAUSING = "unpausing"
SUSPENDING = "suspending"
RESUMING = "resuming"
RESCUING = "rescuing"
UNRESCUING = "unrescuing"
UPDATING_PASSWORD = "updating_password"
SOFT_DELETING = "soft-deleting"
RESTORING = "restoring"
#: Work on a guest where it runs (power, rescue, password, soft delete): a delete may
#: overtake any of it.
GUEST_TASK_STATES = (REBOOTING, REBOOT_PENDING, REBOOT_STARTED, REBOOTING_HARD,
                     REBOOT_PENDING_HARD, REBOOT_STARTED_HARD, PAUSING, UNPAUSING, SUSPENDING,
                     RESUMING, RESCUING, UNRESCUING, UPDATING_PASSWORD, SOFT_DELETING,
                     RESTORING)

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


#: Task states that show as their own status while the server is in these vm states.
_TASK_STATUS = {
    **{(ACTIVE, t): "REBOOT" for t in (REBOOTING, REBOOT_PENDING, REBOOT_STARTED)},
    **{(v, t): "HARD_REBOOT" for v in (ACTIVE, STOPPED, PAUSED, SUSPENDED)
       for t in (REBOOTING_HARD, REBOOT_PENDING_HARD, REBOOT_STARTED_HARD)},
    (ACTIVE, UPDATING_PASSWORD): "PASSWORD",
}


def api_status(vm_state: str | None, task_state: str | None) -> str:
    if (vm_state, task_state) in _TASK_STATUS:
        return _TASK_STATUS[(vm_state, task_state)]
    if task_state in _RESIZING and vm_state in (ACTIVE, STOPPED):
        return "RESIZE"
    if task_state == RESIZE_REVERTING and vm_state == RESIZED:
        return "REVERT_RESIZE"
    if task_state in REBUILD_TASK_STATES and vm_state in (ACTIVE, STOPPED, ERROR):
        return "REBUILD"
    return _STATUS.get(vm_state or "", "UNKNOWN")


def vm_states_for_status(status: str) -> set[str]:
    """The vm_states a ``status=`` list filter selects."""
    status = status.upper()
    return {vm for vm, name in _STATUS.items() if name == status}
