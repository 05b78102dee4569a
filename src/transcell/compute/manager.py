"""The compute host agent: one per host, in one cell, owning its driver and disks.

It never talks to a host in another cell; images come from and go to the
global image store, ports from the global network service.
"""

from __future__ import annotations

import logging
import threading
import uuid as uuidlib

from sqlalchemy import select

from transcell.cell import Cell
from transcell.compute import actions
from transcell.compute import instance as inst
from transcell.compute import vm_states as vm
from transcell.compute.move_ops import MoveOperations
from transcell.compute.resource_tracker import ResourceTracker
from transcell.compute.virt import power_state
from transcell.compute.virt.driver import ComputeDriver
from transcell.conductor.rpcapi import ConductorAPI
from transcell.conf import CONF
from transcell.context import RequestContext
from transcell.db import cell_models as cm
from transcell.db.session import cell_session
from transcell.db.types import utcnow
from transcell.registry import services
from transcell.rpc.bus import get_bus

LOG = logging.getLogger(__name__)

BINARY = "nova-compute"


class ComputeManager(MoveOperations):
    def __init__(self, host: str, cell: Cell, driver: ComputeDriver, traits: list[str]):
        self.host = host
        self.cell = cell
        self.driver = driver
        self.tracker = ResourceTracker(host, cell, driver, traits)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # lifecycle ------------------------------------------------------------
    def init_host(self) -> None:
        self.driver.init_host()
        service_id = self._register_service()
        self.tracker.register(service_id)
        self._sync_power_states()
        self._resume_deletes()

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

    def _resume_deletes(self) -> None:
        ctx = RequestContext.admin()
        for row in inst.on_host(self.cell, self.host):
            if row["task_state"] == vm.DELETING:
                self.terminate_instance(ctx, row["uuid"])

    # builds -----------------------------------------------------------------
    def build_and_run_instance(self, ctx: RequestContext, instance_uuid: str,
                               request_spec: dict, alternates: list[dict]) -> None:
        event = "compute__do_build_and_run_instance"
        actions.start_event(ctx, self.cell, instance_uuid, event, host=self.host)
        try:
            self._build(ctx, instance_uuid, request_spec)
        except Exception as exc:
            LOG.warning("Build of %s failed on %s: %s", instance_uuid, self.host, exc)
            actions.finish_event(ctx, self.cell, instance_uuid, event, exc)
            self._undo_build(ctx, instance_uuid)
            inst.add_fault(self.cell, instance_uuid, exc, host=self.host)
            ConductorAPI(get_bus(CONF.rpc.transport_url)).reschedule(
                ctx, instance_uuid, alternates, self.host, str(exc) or type(exc).__name__)
            return
        actions.finish_event(ctx, self.cell, instance_uuid, event)

    def _build(self, ctx: RequestContext, instance_uuid: str, request_spec: dict) -> None:
        server = inst.update(self.cell, instance_uuid, task_state=vm.NETWORKING)
        vifs = services.network.allocate_for_instance(
            ctx, instance_uuid, server["project_id"], request_spec["requested_networks"],
            self.host)
        inst.set_vifs(self.cell, instance_uuid, vifs)
        server = inst.update(self.cell, instance_uuid, task_state=vm.SPAWNING)
        flavor = server["flavor"]
        image = services.image.get(ctx, server["image_ref"])
        self.driver.spawn(
            {"uuid": instance_uuid, "display_name": server["display_name"],
             "vcpus": flavor["vcpus"], "memory_mb": flavor["memory_mb"]},
            image,
            lambda image_id, dest: services.image.download_to_file(ctx, image_id, dest),
            flavor["root_gb"], power_on=True)
        inst.update(self.cell, instance_uuid, vm_state=vm.ACTIVE, task_state=None,
                    power_state=power_state.RUNNING, launched_at=utcnow())
        self.tracker.update_usage()

    def _undo_build(self, ctx: RequestContext, instance_uuid: str) -> None:
        """Leave the host as if the build never came here, so a reschedule starts clean."""
        try:
            self.driver.destroy(instance_uuid, destroy_disks=True)
        except Exception:
            LOG.exception("Could not clean up guest %s", instance_uuid)
        try:
            services.network.deallocate_for_instance(ctx, instance_uuid)
            inst.set_vifs(self.cell, instance_uuid, [])
        except Exception:
            LOG.exception("Could not release ports of %s", instance_uuid)
        inst.update(self.cell, instance_uuid, task_state=None)
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
        with actions.event(ctx, self.cell, instance_uuid, "compute_stop_instance", self.host):
            self.driver.power_off(instance_uuid)
            inst.update(self.cell, instance_uuid, expected_task_state=vm.POWERING_OFF,
                        vm_state=vm.STOPPED, task_state=None,
                        power_state=power_state.SHUTDOWN)

    def start_instance(self, ctx: RequestContext, instance_uuid: str) -> None:
        with actions.event(ctx, self.cell, instance_uuid, "compute_start_instance", self.host):
            self.driver.power_on(instance_uuid)
            inst.update(self.cell, instance_uuid, expected_task_state=vm.POWERING_ON,
                        vm_state=vm.ACTIVE, task_state=None, power_state=power_state.RUNNING)

    # delete -----------------------------------------------------------------
    def terminate_instance(self, ctx: RequestContext, instance_uuid: str) -> None:
        with actions.event(ctx, self.cell, instance_uuid, "compute_terminate_instance",
                           self.host):
            self.driver.destroy(instance_uuid, destroy_disks=True)
            services.network.deallocate_for_instance(ctx, instance_uuid)
            services.placement.delete_allocations(instance_uuid)
            inst.soft_delete(self.cell, instance_uuid)
        self.tracker.update_usage()
