"""The scheduler service: Placement narrows, filters decide, weighers order.

The chosen host is claimed in Placement here, before anything is built, so
two concurrent builds cannot both take the last slot; the alternates are
unclaimed and kept in the chosen host's cell, where a reschedule may go.
"""

from __future__ import annotations

import logging

from transcell import exception
from transcell.conf import CONF
from transcell.context import RequestContext
from transcell.registry import services
from transcell.scheduler import filters, request, weighers
from transcell.scheduler.host_state import HostState, all_host_states

LOG = logging.getLogger(__name__)


class SchedulerManager:
    def select_destinations(self, ctx: RequestContext, request_spec: dict,
                            instance_uuid: str, claim: bool = True) -> list[dict]:
        spec = request_spec
        flavor = spec["flavor"]
        wanted = request.resources(flavor)
        required, forbidden = request.traits(flavor)
        states = all_host_states()
        member_of = []
        if spec.get("availability_zone"):
            zone_cells = [s.cell.uuid for s in states.values()
                          if s.availability_zone == spec["availability_zone"]]
            if not zone_cells:
                raise exception.NoValidHost(reason="No host is in availability zone "
                                                   f"{spec['availability_zone']}.")
            member_of.append(sorted(set(zone_cells)))
        candidates, summaries = services.placement.get_allocation_candidates(
            wanted, required_traits=required, forbidden_traits=forbidden, member_of=member_of,
            limit=CONF.scheduler.max_placement_results)
        if not candidates:
            raise exception.NoValidHost(reason=self._why_none(wanted, required))
        by_rp: dict[str, dict] = {}
        for candidate in candidates:
            rps = list(candidate["allocations"])
            if len(rps) == 1 and rps[0] in states:
                by_rp.setdefault(rps[0], candidate)
        hosts: list[HostState] = []
        for rp_uuid in by_rp:
            state = states[rp_uuid]
            summary = summaries.get(rp_uuid, {}).get("resources", {})
            state.free_ram_mb = _free(summary.get("MEMORY_MB"))
            state.free_disk_gb = _free(summary.get("DISK_GB"))
            hosts.append(state)
        hosts = weighers.weigh(filters.filter_hosts(hosts, spec), spec)
        if not hosts:
            raise exception.NoValidHost(reason="There are not enough hosts available: every "
                                               "candidate was filtered out (service down, "
                                               "disabled, or not in the requested zone).")
        for index, host in enumerate(hosts):
            allocation = by_rp[host.uuid]["allocations"]
            if claim and not services.placement.claim(
                    instance_uuid, allocation, spec["project_id"], spec["user_id"]):
                LOG.info("Claim on %s lost to a concurrent request; trying the next host",
                         host.host)
                continue
            chosen = _selection(host, allocation)
            others = [h for h in hosts[index + 1:] if h.cell.uuid == host.cell.uuid]
            alternates = [_selection(h, by_rp[h.uuid]["allocations"])
                          for h in others[:CONF.scheduler.max_attempts - 1]]
            return [chosen, *alternates]
        raise exception.NoValidHost(reason="Every suitable host was taken by concurrent "
                                           "requests.")

    @staticmethod
    def _why_none(wanted: dict, required: list[str]) -> str:
        text = "There are not enough hosts available for " + ", ".join(
            f"{rc}={amount}" for rc, amount in sorted(wanted.items()))
        if required:
            text += " with traits " + ", ".join(required)
        return text + "."


def _free(resource: dict | None) -> float:
    if not resource:
        return 0
    return resource.get("capacity", 0) - resource.get("used", 0)


def _selection(host: HostState, allocation: dict) -> dict:
    return {"host": host.host, "nodename": host.nodename, "compute_node_uuid": host.uuid,
            "cell_uuid": host.cell.uuid, "allocation_request": allocation}
