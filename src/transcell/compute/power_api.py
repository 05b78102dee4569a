"""The compute API's logic for actions that change a guest where it runs: reboot,
pause, suspend, rescue, lock, state reset, soft delete and restore, passwords, the
console log and diagnostics.

Each state change is taken with one update conditional on the states the action
may start from (``instance.update``), recorded as an instance action, and only then
cast to the server's host: of two racing requests exactly one gets its 202, and a
host that restarts finds the task state and finishes the work. The checks before
the update (lock, state) only give the caller Nova's early, friendly answer.
"""

from __future__ import annotations

import datetime as dt
import secrets
import string
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from transcell import cell as cells
from transcell import exception
from transcell import mapping as mappings
from transcell.compute import actions
from transcell.compute import instance as inst
from transcell.compute import vm_states as vm
from transcell.compute.power_rpcapi import PowerComputeAPI
from transcell.conf import CONF
from transcell.context import RequestContext
from transcell.db import cell_models as cm
from transcell.db.session import cell_session
from transcell.db.types import utcnow
from transcell.registry import services

if TYPE_CHECKING:
    from transcell.compute.api import API

REBOOT = "reboot"
PAUSE = "pause"
UNPAUSE = "unpause"
SUSPEND = "suspend"
RESUME = "resume"
RESCUE = "rescue"
UNRESCUE = "unrescue"
LOCK = "lock"
UNLOCK = "unlock"
RESET_STATE = "resetState"
RESTORE = "restore"
CHANGE_PASSWORD = "changePassword"

#: A hard reboot may start from these vm states (a soft one only from active)...
HARD_REBOOT_VM_STATES = (vm.ACTIVE, vm.STOPPED, vm.PAUSED, vm.SUSPENDED, vm.ERROR)
#: ... and may overtake a reboot or a pause, suspend or resume on its way, as in Nova.
HARD_REBOOT_TASK_STATES = (None, vm.REBOOTING, vm.REBOOT_PENDING, vm.REBOOT_STARTED,
                           vm.REBOOTING_HARD, vm.REBOOT_PENDING_HARD, vm.REBOOT_STARTED_HARD,
                           vm.RESUMING, vm.UNPAUSING, vm.PAUSING, vm.SUSPENDING)
RESCUE_VM_STATES = (vm.ACTIVE, vm.STOPPED, vm.ERROR)

#: Keys of system metadata that hold a server's encrypted password (os-server-password),
#: split because one value holds at most 255 characters.
PASSWORD_KEYS = tuple(f"password_{i}" for i in range(4))
PASSWORD_LENGTH = 12


def check_not_locked(ctx: RequestContext, server: dict) -> None:
    """A locked server refuses every action of a non-administrator: Nova's 409."""
    if server.get("locked") and not ctx.is_admin:
        raise exception.InstanceIsLocked(instance_uuid=server["uuid"])


def require_state(server: dict, action: str, vm_states: tuple[str, ...],
                  task_states: tuple[str | None, ...] = (None,)) -> None:
    """Nova's 409 for an action the server's current state does not allow."""
    if server["task_state"] not in task_states:
        raise exception.InstanceInvalidState(action=action, instance_uuid=server["uuid"],
                                             attr="task_state", state=server["task_state"])
    if server["vm_state"] not in vm_states:
        raise exception.InstanceInvalidState(action=action, instance_uuid=server["uuid"],
                                             attr="vm_state", state=server["vm_state"])


def require_host(server: dict) -> str:
    """The host that runs the guest; a server that never got one is not ready (409)."""
    if not server.get("host"):
        raise exception.InstanceNotReady(instance_id=server["uuid"])
    return server["host"]


def generate_password(length: int = PASSWORD_LENGTH) -> str:
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(length))


class PowerAPI:
    def __init__(self, api: API) -> None:
        self.api = api
        self.rpc = PowerComputeAPI()

    def _begin(self, ctx: RequestContext, server_id: str, action: str,
               vm_states: tuple[str, ...], task_state: str,
               task_states: tuple[str | None, ...] = (None,), **values: Any
               ) -> tuple[cells.Cell, dict]:
        """Take the server for ``action``: lock and state checked, task state set by
        one update conditional on both (a lock that lands between the read and the
        update still wins), the action recorded. Returns the updated server."""
        cell, server = self.api.get(ctx, server_id)
        check_not_locked(ctx, server)
        require_state(server, action, vm_states, task_states)
        require_host(server)
        server = inst.update(cell, server_id, expected_task_state=task_states,
                             expected_vm_state=vm_states, expect_unlocked=not ctx.is_admin,
                             task_state=task_state, **values)
        actions.record_action(ctx, cell, server_id, action)
        return cell, server

    # reboot, pause, suspend -------------------------------------------------
    def reboot(self, ctx: RequestContext, server_id: str, reboot_type: str) -> None:
        if reboot_type == "HARD":
            _, server = self._begin(ctx, server_id, REBOOT, HARD_REBOOT_VM_STATES,
                                    vm.REBOOTING_HARD, HARD_REBOOT_TASK_STATES)
        else:
            _, server = self._begin(ctx, server_id, REBOOT, (vm.ACTIVE,), vm.REBOOTING)
        self.rpc.reboot_instance(ctx, server["host"], server_id, reboot_type)

    def pause(self, ctx: RequestContext, server_id: str) -> None:
        _, server = self._begin(ctx, server_id, PAUSE, (vm.ACTIVE,), vm.PAUSING)
        self.rpc.pause_instance(ctx, server["host"], server_id)

    def unpause(self, ctx: RequestContext, server_id: str) -> None:
        _, server = self._begin(ctx, server_id, UNPAUSE, (vm.PAUSED,), vm.UNPAUSING)
        self.rpc.unpause_instance(ctx, server["host"], server_id)

    def suspend(self, ctx: RequestContext, server_id: str) -> None:
        _, server = self._begin(ctx, server_id, SUSPEND, (vm.ACTIVE,), vm.SUSPENDING)
        self.rpc.suspend_instance(ctx, server["host"], server_id)

    def resume(self, ctx: RequestContext, server_id: str) -> None:
        _, server = self._begin(ctx, server_id, RESUME, (vm.SUSPENDED,), vm.RESUMING)
        self.rpc.resume_instance(ctx, server["host"], server_id)

    # rescue -----------------------------------------------------------------
    def rescue(self, ctx: RequestContext, server_id: str, password: str | None,
               image_ref: str | None, allow_volume_backed: bool = False) -> str:
        """Boot from a rescue image (the server's own when none is named); returns the
        rescue password, generated when not given.

        A volume-backed server (2.87, ``allow_volume_backed``) has no image of its
        own and its root disk stays attached: the rescue image must say where the
        rescue disk goes (``hw_rescue_device`` or ``hw_rescue_bus``, a stable
        device rescue), else 400 as in Nova."""
        cell, server = self.api.get(ctx, server_id)
        check_not_locked(ctx, server)
        volume_backed = not server["image_ref"] or any(
            b.get("boot_index") == 0 and b.get("volume_id") for b in server["bdms"])
        if volume_backed and not (allow_volume_backed and image_ref):
            raise exception.Invalid("Cannot rescue a volume-backed instance")
        if image_ref:
            try:
                image = services.image.get(ctx, image_ref)
            except exception.ImageNotFound:
                raise exception.Invalid(f"Image {image_ref} could not be found.") from None
            if volume_backed and not _stable_rescue(image):
                raise exception.Invalid("Cannot rescue a volume-backed instance with an "
                                        "image that has neither hw_rescue_device nor "
                                        "hw_rescue_bus.")
        password = password or generate_password()
        _, server = self._begin(ctx, server_id, RESCUE, RESCUE_VM_STATES, vm.RESCUING)
        self.rpc.rescue_instance(ctx, server["host"], server_id, password, image_ref)
        return password

    def unrescue(self, ctx: RequestContext, server_id: str) -> None:
        _, server = self._begin(ctx, server_id, UNRESCUE, (vm.RESCUED,), vm.UNRESCUING)
        self.rpc.unrescue_instance(ctx, server["host"], server_id)

    # password -----------------------------------------------------------------
    def change_password(self, ctx: RequestContext, server_id: str, password: str) -> None:
        """The host sets it before this returns (a call): a guest that cannot take it is
        the caller's 409, and the task is ended either way."""
        _, server = self._begin(ctx, server_id, CHANGE_PASSWORD, (vm.ACTIVE,),
                                vm.UPDATING_PASSWORD)
        self.rpc.set_admin_password(ctx, server["host"], server_id, password)

    def get_password(self, ctx: RequestContext, server_id: str) -> str:
        _, server = self.api.get(ctx, server_id)
        meta = server.get("system_metadata") or {}
        return "".join(meta.get(key) or "" for key in PASSWORD_KEYS)

    def clear_password(self, ctx: RequestContext, server_id: str) -> None:
        cell, server = self.api.get(ctx, server_id)
        for key in PASSWORD_KEYS:
            inst.set_system_metadata(cell, server_id, key, None)

    # lock -------------------------------------------------------------------
    def lock(self, ctx: RequestContext, server_id: str, reason: str | None) -> None:
        """Locked by its owner's project ("owner") or by an administrator from
        elsewhere ("admin"); an owner locking again changes nothing, as in Nova."""
        cell, server = self.api.get(ctx, server_id)
        is_owner = server["project_id"] == ctx.project_id
        if server["locked"] and is_owner:
            return
        actions.record_action(ctx, cell, server_id, LOCK)
        with actions.event(ctx, cell, server_id, "api_lock"):
            inst.update(cell, server_id, locked=True, locked_by="owner" if is_owner else "admin")
            if reason is not None:
                inst.set_system_metadata(cell, server_id, "locked_reason", reason)

    @staticmethod
    def locked_by_caller_side(ctx: RequestContext, server: dict) -> bool:
        """Whether the caller's side (owner or administrator) set the lock, which is
        what lets it unlock without the override rule."""
        expected = "owner" if server["project_id"] == ctx.project_id else "admin"
        return not server.get("locked_by") or server["locked_by"] == expected

    def unlock(self, ctx: RequestContext, server_id: str) -> None:
        cell, _ = self.api.get(ctx, server_id)
        actions.record_action(ctx, cell, server_id, UNLOCK)
        with actions.event(ctx, cell, server_id, "api_unlock"):
            inst.update(cell, server_id, locked=False, locked_by=None)
            inst.set_system_metadata(cell, server_id, "locked_reason", None)

    # state reset --------------------------------------------------------------
    def reset_state(self, ctx: RequestContext, server_id: str, state: str) -> None:
        """An administrator's word over whatever the server shows: no state is
        expected, the task is cleared, as Nova's os-resetState does."""
        cell, _ = self.api.get(ctx, server_id)
        inst.update(cell, server_id, vm_state=state, task_state=None)
        actions.record_action(ctx, cell, server_id, RESET_STATE)

    # soft delete ----------------------------------------------------------------
    def soft_delete(self, ctx: RequestContext, cell: cells.Cell, server: dict,
                    deletable_task_states: tuple) -> bool:
        """Delete the server softly when ``[compute] reclaim_instance_interval`` asks
        for it: its guest is stopped and kept, it stays listed as SOFT_DELETED until
        restored, force-deleted or reclaimed. False when a hard delete must happen
        instead (the option is 0, the server never ran on a host, or it is already
        soft-deleted)."""
        if CONF.compute.reclaim_instance_interval <= 0 or cell.is_cell0 or \
                not server.get("host") or not server.get("launched_at") or \
                server["vm_state"] == vm.SOFT_DELETED:
            return False
        server_id = server["uuid"]
        inst.update(cell, server_id, expected_task_state=deletable_task_states,
                    expect_unlocked=not ctx.is_admin, task_state=vm.SOFT_DELETING,
                    deleted_at=utcnow())
        actions.record_action(ctx, cell, server_id, actions.DELETE)
        self.rpc.soft_delete_instance(ctx, server["host"], server_id)
        return True

    def restore(self, ctx: RequestContext, server_id: str) -> None:
        _, server = self._begin(ctx, server_id, RESTORE, (vm.SOFT_DELETED,), vm.RESTORING,
                                deleted_at=None)
        self.rpc.restore_instance(ctx, server["host"], server_id)

    def force_delete(self, ctx: RequestContext, server_id: str) -> None:
        _, server = self.api.get(ctx, server_id)
        check_not_locked(ctx, server)
        self.api.delete(ctx, server_id, force=True)

    # console, diagnostics ---------------------------------------------------------
    def console_output(self, ctx: RequestContext, server_id: str,
                       length: int | None) -> str:
        _, server = self.api.get(ctx, server_id)
        if server["task_state"] in (vm.DELETING, *vm.MOVING_TASK_STATES):
            raise exception.InstanceInvalidState(
                action="get_console_output", instance_uuid=server_id, attr="task_state",
                state=server["task_state"])
        return self.rpc.get_console_output(ctx, require_host(server), server_id, length)

    def diagnostics(self, ctx: RequestContext, server_id: str) -> dict:
        _, server = self.api.get(ctx, server_id)
        return self.rpc.get_instance_diagnostics(ctx, require_host(server), server_id)


def reclaim_expired(now: dt.datetime | None = None) -> list[str]:
    """Delete for good the soft-deleted servers older than ``reclaim_instance_interval``.

    Run by the conductor's periodic pass, which reaches every cell and the API
    database (the mapping is queued for delete like any delete's). Each server is
    taken with an update conditional on its soft-deleted state and no task, so a
    restore or forceDelete racing the pass wins or loses whole.
    """
    interval = CONF.compute.reclaim_instance_interval
    if interval <= 0:
        return []
    cutoff = (now or utcnow()) - dt.timedelta(seconds=interval)
    ctx = RequestContext.admin()
    rpc = PowerComputeAPI()
    reclaimed = []
    for cell in cells.list_cells(include_cell0=False):
        with cell_session(cell) as s:
            uuids = s.scalars(select(cm.Instance.uuid).where(
                cm.Instance.vm_state == vm.SOFT_DELETED, cm.Instance.task_state.is_(None),
                cm.Instance.deleted == 0, cm.Instance.hidden.is_(False),
                cm.Instance.deleted_at < cutoff)).all()
        for uuid in uuids:
            try:
                server = inst.update(cell, uuid, expected_task_state=None,
                                     expected_vm_state=vm.SOFT_DELETED, task_state=vm.DELETING)
            except (exception.Conflict, exception.InstanceNotFound):
                continue
            mappings.queue_for_delete(uuid)
            if server["host"]:
                rpc.terminate_instance(ctx, server["host"], uuid)
            else:
                inst.soft_delete(cell, uuid)
            reclaimed.append(uuid)
    return reclaimed


def _stable_rescue(image: dict) -> bool:
    """Whether the image names the rescue disk's device or bus (a stable device rescue);
    image properties are top-level keys, or under ``properties`` in older shapes."""
    props = {**(image.get("properties") or {}), **image}
    return bool(props.get("hw_rescue_device") or props.get("hw_rescue_bus"))
