"""The compute host agent: one per host, in one cell, owning its driver and disks.

It never talks to a host in another cell; images come from and go to the
global image store, ports from the global network service.
"""

from __future__ import annotations

import logging
import threading
import uuid as uuidlib

from sqlalchemy import select

from transcell import exception
from transcell.cell import Cell
from transcell.compute import actions, port_groups, shelving
from transcell.compute import instance as inst
from transcell.compute import vm_states as vm
from transcell.compute.event_ops import EventOperations
from transcell.compute.image_ops import ImageOperations
from transcell.compute.move_ops import MoveOperations
from transcell.compute.power_ops import POWER_TASK_STATES, PowerOperations
from transcell.compute.precopy_ops import PrecopyOperations
from transcell.compute.resource_tracker import ResourceTracker
from transcell.compute.shelve_ops import ShelveOperations
from transcell.compute.virt import power_state
from transcell.compute.virt.driver import ComputeDriver
from transcell.compute.volume_ops import VolumeOperations
from transcell.conductor.cell import CellConductorAPI
from transcell.conf import CONF
from transcell.context import RequestContext
from transcell.db import cell_models as cm
from transcell.db.session import cell_session
from transcell.db.types import utcnow
from transcell.faults import hold_point
from transcell.registry import services
from transcell.rpc.bus import get_bus

LOG = logging.getLogger(__name__)

BINARY = "nova-compute"

#: Task states of a build on its way; a restart resumes a build found in one.
BUILD_TASK_STATES = (vm.SCHEDULING, vm.NETWORKING, vm.SPAWNING)


class ComputeManager(MoveOperations, PrecopyOperations, VolumeOperations, PowerOperations,
                     ImageOperations, ShelveOperations, EventOperations):
    #: messages of major 1 up to this minor are accepted (1.2: attach_volume,
    #: detach_volume; 1.3: the everyday server actions, snapshots and shelving;
    #: 1.4: external events and assisted volume snapshots; 1.5: pre-copy; 1.6: measuring
    #: what a first pre-copy round would send)
    RPC_API_VERSION = "1.6"

    def __init__(self, host: str, cell: Cell, driver: ComputeDriver, traits: list[str]):
        self.host = host
        self.cell = cell
        self.driver = driver
        self.tracker = ResourceTracker(host, cell, driver, traits)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()

    def _lock(self, instance_uuid: str) -> threading.Lock:
        """One lock per server on this host: a delete waits for the build or power
        change it interrupts to reach a safe point instead of racing its disk."""
        with self._locks_guard:
            return self._locks.setdefault(instance_uuid, threading.Lock())

    # lifecycle ------------------------------------------------------------
    def init_host(self) -> None:
        self.driver.init_host()
        service_id = self._register_service()
        self.tracker.register(service_id)
        self._sync_power_states()
        self._resume_accepted_work()

    def start_periodic(self) -> None:
        self._thread = threading.Thread(target=self._periodic, name=f"periodic-{self.host}",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _periodic(self) -> None:
        while not self._stop.wait(CONF.compute.report_interval):
            try:
                self._heartbeat()
                self.tracker.update_usage()
                self.offload_expired_shelves()
            except Exception:
                LOG.exception("periodic task failed on %s", self.host)

    def _register_service(self) -> int:
        with cell_session(self.cell) as s:
            svc = s.scalar(select(cm.Service).where(cm.Service.host == self.host,
                                                    cm.Service.binary == BINARY,
                                                    cm.Service.deleted == 0))
            if svc is None:
                svc = cm.Service(uuid=str(uuidlib.uuid4()), host=self.host, binary=BINARY,
                                 topic="compute")
                s.add(svc)
            svc.last_seen_up = utcnow()
            svc.report_count = (svc.report_count or 0) + 1
            s.flush()
            return svc.id

    def _heartbeat(self) -> None:
        with cell_session(self.cell) as s:
            svc = s.scalar(select(cm.Service).where(cm.Service.host == self.host,
                                                    cm.Service.binary == BINARY,
                                                    cm.Service.deleted == 0))
            if svc is not None:
                svc.last_seen_up = utcnow()
                svc.report_count += 1

    def _sync_power_states(self) -> None:
        for row in inst.on_host(self.cell, self.host):
            if row["hidden"] or not self.driver.instance_exists(row["uuid"]):
                continue
            state = self.driver.get_power_state(row["uuid"])
            if state != row["power_state"]:
                inst.update(self.cell, row["uuid"], power_state=state)

    def _resume_accepted_work(self) -> None:
        """Finish what the API accepted for this host before the process died.

        The API records a server's task state before it answers 202 and casts;
        a cast lost with the process would leave that state forever. So on
        start a host carries out every delete and power change its servers
        still show, and rebuilds a server caught mid-build from what its cell
        recorded (its flavor and requested networks), as if the build had
        just arrived; a volume the API reserved for a server here is connected.
        """
        ctx = RequestContext.admin()
        for row in inst.on_host(self.cell, self.host):
            if row["hidden"]:
                continue
            uuid, task = row["uuid"], row["task_state"]
            try:
                if task == vm.DELETING:
                    self.terminate_instance(ctx, uuid)
                elif task == vm.POWERING_OFF:
                    self.stop_instance(ctx, uuid)
                elif task == vm.POWERING_ON:
                    self.start_instance(ctx, uuid)
                elif task in POWER_TASK_STATES:
                    self._resume_power_work(ctx, row)
                elif task in vm.IMAGE_TASK_STATES or task in vm.REBUILD_TASK_STATES:
                    self.resume_image_work(ctx, row)
                elif task in shelving.HOST_TASKS or task == shelving.UNSHELVING:
                    self.resume_shelving(ctx, row)
                elif row["vm_state"] == vm.BUILDING and task in BUILD_TASK_STATES:
                    self._resume_build(ctx, uuid)
                else:
                    self._resume_attaches(ctx, row)
            except Exception:
                LOG.exception("Could not finish %s of %s after a restart", task, uuid)

    def _resume_build(self, ctx: RequestContext, instance_uuid: str) -> None:
        server = inst.get(self.cell, instance_uuid)
        requested = server.get("request_networks")
        if isinstance(requested, list) and len(requested) == 1 and \
                set(requested[0]) == {"special"}:
            requested = requested[0]["special"]
        LOG.info("Resuming the build of %s on %s after a restart", instance_uuid, self.host)
        self._undo_build(ctx, instance_uuid, task_state=vm.SCHEDULING)
        self.build_and_run_instance(ctx, instance_uuid, {"requested_networks": requested}, [])

    # builds -----------------------------------------------------------------
    def build_and_run_instance(self, ctx: RequestContext, instance_uuid: str,
                               request_spec: dict, alternates: list[dict]) -> None:
        hold_point("accepted-build", instance_uuid)
        event = "compute__do_build_and_run_instance"
        actions.start_event(ctx, self.cell, instance_uuid, event, host=self.host)
        try:
            with self._lock(instance_uuid):
                self._build(ctx, instance_uuid, request_spec)
        except (inst.UnexpectedTaskState, exception.InstanceNotFound) as exc:
            # a delete took the server from the build: leave nothing behind here
            LOG.info("Build of %s on %s stopped: %s", instance_uuid, self.host, exc)
            actions.finish_event(ctx, self.cell, instance_uuid, event, exc)
            self._abandon_build(ctx, instance_uuid)
            return
        except Exception as exc:
            LOG.warning("Build of %s failed on %s: %s", instance_uuid, self.host, exc)
            actions.finish_event(ctx, self.cell, instance_uuid, event, exc)
            try:
                self._undo_build(ctx, instance_uuid)
            except (inst.UnexpectedTaskState, exception.InstanceNotFound):
                return  # a delete owns the server now; nothing to reschedule
            inst.add_fault(self.cell, instance_uuid, exc, host=self.host)
            # to the cell conductor on this cell's own bus: a cell never calls up
            CellConductorAPI(get_bus(self.cell.transport_url)).reschedule(
                ctx, instance_uuid, alternates, self.host, str(exc) or type(exc).__name__,
                request_spec)
            return
        actions.finish_event(ctx, self.cell, instance_uuid, event)

    def _build(self, ctx: RequestContext, instance_uuid: str, request_spec: dict) -> None:
        server = inst.update(self.cell, instance_uuid, expected_task_state=vm.SCHEDULING,
                             task_state=vm.NETWORKING)
        vifs = services.network.allocate_for_instance(
            ctx, instance_uuid, server["project_id"], request_spec["requested_networks"],
            self.host)
        inst.set_vifs(self.cell, instance_uuid, vifs)
        # the groups the create asked for replace the default on the ports made here
        inst.set_vifs(self.cell, instance_uuid, port_groups.apply(ctx, server, vifs))
        server = inst.update(self.cell, instance_uuid, expected_task_state=vm.NETWORKING,
                             task_state=vm.SPAWNING)
        flavor = server["flavor"]
        block_device_info = self._prep_block_devices(ctx, instance_uuid)
        # a volume-backed server boots from its volume: no image to fetch here
        image = services.image.get(ctx, server["image_ref"]) if server["image_ref"] else {}
        self.driver.spawn(
            {"uuid": instance_uuid, "display_name": server["display_name"],
             "vcpus": flavor["vcpus"], "memory_mb": flavor["memory_mb"],
             "ephemeral_gb": flavor.get("ephemeral_gb") or 0},
            image,
            lambda image_id, dest: services.image.download_to_file(ctx, image_id, dest),
            flavor["root_gb"], power_on=True, block_device_info=block_device_info)
        self._complete_block_devices(ctx, block_device_info)
        inst.update(self.cell, instance_uuid, expected_task_state=vm.SPAWNING,
                    vm_state=vm.ACTIVE, task_state=None,
                    power_state=power_state.RUNNING, launched_at=utcnow())
        self.tracker.update_usage()

    def _abandon_build(self, ctx: RequestContext, instance_uuid: str) -> None:
        """A build a delete overtook: drop the guest and ports; the delete owns the row."""
        try:
            self.driver.destroy(instance_uuid, destroy_disks=True)
            services.network.deallocate_for_instance(ctx, instance_uuid)
        except Exception:
            LOG.exception("Could not clean up the abandoned build of %s", instance_uuid)
        self.tracker.update_usage()

    def _undo_build(self, ctx: RequestContext, instance_uuid: str,
                    task_state: str | None = None) -> None:
        """Leave the host as if the build never came here, so a reschedule starts clean."""
        try:
            self.driver.destroy(instance_uuid, destroy_disks=True)
        except Exception:
            LOG.exception("Could not clean up guest %s", instance_uuid)
        try:
            self._release_block_devices(ctx, instance_uuid, for_retry=True)
        except Exception:
            LOG.exception("Could not release the volumes of %s", instance_uuid)
        try:
            services.network.deallocate_for_instance(ctx, instance_uuid)
            inst.set_vifs(self.cell, instance_uuid, [])
        except Exception:
            LOG.exception("Could not release ports of %s", instance_uuid)
        inst.update(self.cell, instance_uuid, expected_task_state=BUILD_TASK_STATES,
                    task_state=task_state)
        self.tracker.update_usage()

    # image cache --------------------------------------------------------------
    def cache_images(self, ctx: RequestContext, image_ids: list[str]) -> dict[str, str]:
        """Fetch images into this host's cache before any server needs them (2.81).

        Each image ends as Nova reports it: ``cached`` (fetched now),
        ``existing`` (already there), ``unsupported`` (the driver keeps no
        cache) or ``error``; one image failing does not stop the others. The
        API only casts, so the outcome is logged.
        """
        cache = getattr(self.driver, "cache_image", None)
        results: dict[str, str] = {}
        for image_id in image_ids:
            if cache is None:
                results[image_id] = "unsupported"
                continue
            try:
                image = services.image.get(ctx, image_id)
                fetched = cache(image, lambda iid, dest: services.image.download_to_file(
                    ctx, iid, dest))
                results[image_id] = "cached" if fetched else "existing"
            except Exception as exc:
                LOG.error("Caching image %s on %s failed: %s", image_id, self.host, exc)
                results[image_id] = "error"
        LOG.info("Image cache requests on %s: %s", self.host, results)
        return results

    # power ------------------------------------------------------------------
    def stop_instance(self, ctx: RequestContext, instance_uuid: str) -> None:
        hold_point("accepted-stop", instance_uuid)
        with self._lock(instance_uuid), actions.event(ctx, self.cell, instance_uuid,
                                                      "compute_stop_instance", self.host):
            self.driver.power_off(instance_uuid)
            inst.update(self.cell, instance_uuid, expected_task_state=vm.POWERING_OFF,
                        vm_state=vm.STOPPED, task_state=None,
                        power_state=power_state.SHUTDOWN)

    def start_instance(self, ctx: RequestContext, instance_uuid: str) -> None:
        hold_point("accepted-start", instance_uuid)
        with self._lock(instance_uuid), actions.event(ctx, self.cell, instance_uuid,
                                                      "compute_start_instance", self.host):
            self.driver.power_on(instance_uuid)
            inst.update(self.cell, instance_uuid, expected_task_state=vm.POWERING_ON,
                        vm_state=vm.ACTIVE, task_state=None, power_state=power_state.RUNNING)

    # delete -----------------------------------------------------------------
    def terminate_instance(self, ctx: RequestContext, instance_uuid: str) -> None:
        hold_point("accepted-delete", instance_uuid)
        with self._lock(instance_uuid), actions.event(ctx, self.cell, instance_uuid,
                                                      "compute_terminate_instance", self.host):
            self.driver.destroy(instance_uuid, destroy_disks=True)
            self._delete_volumes(ctx, instance_uuid)
            services.network.deallocate_for_instance(ctx, instance_uuid)
            services.placement.delete_allocations(instance_uuid)
            inst.soft_delete(self.cell, instance_uuid)
        self.tracker.update_usage()
