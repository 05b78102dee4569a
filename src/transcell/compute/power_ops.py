"""A compute host's side of reboot, pause, suspend, rescue, soft delete, passwords,
console output and diagnostics of a guest on this host.

Every state change here was promised by the API, which took the server's task state
before it answered 202. The host does the guest's part under the server's lock, then
ends the task with an update conditional on that same task state, so a delete or a
state reset that overtook the request wins, and the request is not half applied. A
failure ends the task too, with a fault, so the server is never left busy.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from transcell import exception
from transcell.compute import actions
from transcell.compute import instance as inst
from transcell.compute import vm_states as vm
from transcell.compute.virt import power_state
from transcell.context import RequestContext
from transcell.faults import hold_point
from transcell.registry import services

LOG = logging.getLogger(__name__)

REBOOT_TASK_STATES = (vm.REBOOTING, vm.REBOOT_PENDING, vm.REBOOT_STARTED)
HARD_REBOOT_TASK_STATES = (vm.REBOOTING_HARD, vm.REBOOT_PENDING_HARD, vm.REBOOT_STARTED_HARD)

#: Task states of the work here; a host that restarts finishes or ends each one.
POWER_TASK_STATES = frozenset(vm.GUEST_TASK_STATES)


def tail(log: str, length: int | None) -> str:
    """The last ``length`` lines of ``log`` as Nova cuts them: split on newlines, so
    a log that ends with one counts the empty line after it."""
    if length is None:
        return log
    if length <= 0:
        return ""
    return "\n".join(log.split("\n")[-length:])


class PowerOperations:
    """Mixed into ComputeManager, which provides host, cell, driver and _lock."""

    host: str
    cell: Any
    driver: Any
    _lock: Any

    def _guest_task(self, ctx: RequestContext, instance_uuid: str, event: str,
                    task_states: tuple[str, ...], work: Callable[[], None],
                    **done: Any) -> None:
        """Do ``work`` on the guest and end the task with ``done`` (vm and power state)."""
        hold_point("accepted-" + event.removeprefix("compute_").removesuffix("_instance"),
                   instance_uuid)
        with self._lock(instance_uuid), actions.event(ctx, self.cell, instance_uuid, event,
                                                      self.host):
            try:
                work()
            except Exception as exc:
                LOG.warning("%s of %s failed on %s: %s", event, instance_uuid, self.host, exc)
                inst.add_fault(self.cell, instance_uuid, exc, host=self.host)
                self._end_task(instance_uuid, task_states)
                raise
            try:
                inst.update(self.cell, instance_uuid, expected_task_state=task_states,
                            task_state=None, **done)
            except (inst.UnexpectedTaskState, exception.InstanceNotFound) as exc:
                # a delete or an administrator's state reset overtook this request: the
                # guest did its part, the server now shows what the later request set
                LOG.info("%s of %s was overtaken on %s: %s", event, instance_uuid,
                         self.host, exc)

    def _end_task(self, instance_uuid: str, task_states: tuple[str, ...]) -> None:
        """Give the server back with the power state its guest really has."""
        try:
            state = self.driver.get_power_state(instance_uuid)
        except exception.InstanceNotFound:
            state = power_state.NOSTATE
        try:
            inst.update(self.cell, instance_uuid, expected_task_state=task_states,
                        task_state=None, power_state=state)
        except (inst.UnexpectedTaskState, exception.InstanceNotFound):
            pass  # something else owns the server now

    # reboot, pause, suspend -------------------------------------------------
    def reboot_instance(self, ctx: RequestContext, instance_uuid: str,
                        reboot_type: str) -> None:
        hard = reboot_type == "HARD"
        states = HARD_REBOOT_TASK_STATES if hard else REBOOT_TASK_STATES
        self._guest_task(ctx, instance_uuid, "compute_reboot_instance", states,
                         lambda: self.driver.reboot(instance_uuid, "HARD" if hard else "SOFT"),
                         vm_state=vm.ACTIVE, power_state=power_state.RUNNING)

    def pause_instance(self, ctx: RequestContext, instance_uuid: str) -> None:
        self._guest_task(ctx, instance_uuid, "compute_pause_instance", (vm.PAUSING,),
                         lambda: self.driver.pause(instance_uuid),
                         vm_state=vm.PAUSED, power_state=power_state.PAUSED)

    def unpause_instance(self, ctx: RequestContext, instance_uuid: str) -> None:
        self._guest_task(ctx, instance_uuid, "compute_unpause_instance", (vm.UNPAUSING,),
                         lambda: self.driver.unpause(instance_uuid),
                         vm_state=vm.ACTIVE, power_state=power_state.RUNNING)

    def suspend_instance(self, ctx: RequestContext, instance_uuid: str) -> None:
        self._guest_task(ctx, instance_uuid, "compute_suspend_instance", (vm.SUSPENDING,),
                         lambda: self.driver.suspend(instance_uuid),
                         vm_state=vm.SUSPENDED, power_state=power_state.SUSPENDED)

    def resume_instance(self, ctx: RequestContext, instance_uuid: str) -> None:
        self._guest_task(ctx, instance_uuid, "compute_resume_instance", (vm.RESUMING,),
                         lambda: self.driver.resume(instance_uuid),
                         vm_state=vm.ACTIVE, power_state=power_state.RUNNING)

    # rescue -----------------------------------------------------------------
    def rescue_instance(self, ctx: RequestContext, instance_uuid: str,
                        rescue_password: str | None, rescue_image_ref: str | None) -> None:
        def work() -> None:
            server = inst.get(self.cell, instance_uuid)
            image_ref = rescue_image_ref or server["image_ref"]
            image = services.image.get(ctx, image_ref) if image_ref else {}
            self.driver.rescue(instance_uuid, image,
                               lambda iid, dest: services.image.download_to_file(ctx, iid,
                                                                                 dest),
                               rescue_password)

        self._guest_task(ctx, instance_uuid, "compute_rescue_instance", (vm.RESCUING,), work,
                         vm_state=vm.RESCUED, power_state=power_state.RUNNING)

    def unrescue_instance(self, ctx: RequestContext, instance_uuid: str) -> None:
        self._guest_task(ctx, instance_uuid, "compute_unrescue_instance", (vm.UNRESCUING,),
                         lambda: self.driver.unrescue(instance_uuid),
                         vm_state=vm.ACTIVE, power_state=power_state.RUNNING)

    # soft delete ------------------------------------------------------------
    def soft_delete_instance(self, ctx: RequestContext, instance_uuid: str) -> None:
        self._guest_task(ctx, instance_uuid, "compute_soft_delete_instance",
                         (vm.SOFT_DELETING,), lambda: self.driver.soft_delete(instance_uuid),
                         vm_state=vm.SOFT_DELETED, power_state=power_state.SHUTDOWN)

    def restore_instance(self, ctx: RequestContext, instance_uuid: str) -> None:
        self._guest_task(ctx, instance_uuid, "compute_restore_instance", (vm.RESTORING,),
                         lambda: self.driver.restore(instance_uuid),
                         vm_state=vm.ACTIVE, power_state=power_state.RUNNING)

    # password, console, diagnostics -------------------------------------------
    def set_admin_password(self, ctx: RequestContext, instance_uuid: str,
                           new_pass: str) -> None:
        self._guest_task(ctx, instance_uuid, "compute_set_admin_password",
                         (vm.UPDATING_PASSWORD,),
                         lambda: self.driver.set_admin_password(instance_uuid, new_pass))

    def get_console_output(self, ctx: RequestContext, instance_uuid: str,
                           tail_length: int | None) -> str:
        return tail(self.driver.get_console_output(instance_uuid), tail_length)

    def get_instance_diagnostics(self, ctx: RequestContext, instance_uuid: str) -> dict:
        """Counters of a running guest; any other power state is Nova's 409."""
        state = self.driver.get_power_state(instance_uuid)
        if state != power_state.RUNNING:
            raise exception.InstanceInvalidState(
                action="get_diagnostics", instance_uuid=instance_uuid, attr="power_state",
                state=power_state.name(state))
        diagnostics = self.driver.get_instance_diagnostics(instance_uuid)
        server = inst.get(self.cell, instance_uuid)
        if not diagnostics.get("nic_details"):
            diagnostics["nic_details"] = [
                {"mac_address": vif["address"], "rx_octets": 0, "rx_errors": 0,
                 "rx_drop": 0, "rx_packets": 0, "rx_rate": None, "tx_octets": 0,
                 "tx_errors": 0, "tx_drop": 0, "tx_packets": 0, "tx_rate": None}
                for vif in server["vifs"]]
            diagnostics["num_nics"] = len(server["vifs"])
        diagnostics["config_drive"] = bool(server.get("config_drive"))
        return diagnostics

    # after a restart ----------------------------------------------------------
    def _resume_power_work(self, ctx: RequestContext, row: dict) -> None:
        """Finish a state change the API accepted for this host before it died.

        Reboots, pauses, suspends, soft deletes and restores are carried out as
        if their cast had just arrived. A rescue's password and a password change
        were never stored (the caller of the one got an error, the other's
        password is the user's to send again), so those tasks are only ended.
        """
        uuid, task = row["uuid"], row["task_state"]
        redo: dict[str, Callable[[], None]] = {
            vm.PAUSING: lambda: self.pause_instance(ctx, uuid),
            vm.UNPAUSING: lambda: self.unpause_instance(ctx, uuid),
            vm.SUSPENDING: lambda: self.suspend_instance(ctx, uuid),
            vm.RESUMING: lambda: self.resume_instance(ctx, uuid),
            vm.UNRESCUING: lambda: self.unrescue_instance(ctx, uuid),
            vm.SOFT_DELETING: lambda: self.soft_delete_instance(ctx, uuid),
            vm.RESTORING: lambda: self.restore_instance(ctx, uuid),
        }
        if task in REBOOT_TASK_STATES or task in HARD_REBOOT_TASK_STATES:
            self.reboot_instance(ctx, uuid, "HARD" if task in HARD_REBOOT_TASK_STATES
                                 else "SOFT")
        elif task in redo:
            redo[task]()
        else:
            self._end_task(uuid, (task,))
