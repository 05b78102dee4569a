"""The scheduler service: Placement narrows, filters decide, weighers order.

The chosen host is claimed in Placement here, before anything is built, so
two concurrent builds cannot both take the last slot; the alternates are
unclaimed and kept in the chosen host's cell, where a reschedule may go.

A move's spec adds ``move: {"source_cell_uuid", "allow_cross_cell"}`` (read
by ``request.move``) next to ``ignore_hosts`` and ``requested_destination``:
a move that may not cross cells asks Placement only for its source cell's
aggregate; one that may is weighed towards its source cell (see
``weighers.cross_cell``) and crosses only when nothing there fits.
"""

from __future__ import annotations

import logging

from transcell import exception
from transcell.conf import CONF
from transcell.context import RequestContext
from transcell.registry import services
from transcell.scheduler import filters, groups, hints, request, weighers
from transcell.scheduler.host_state import HostState, all_host_states

LOG = logging.getLogger(__name__)


class SchedulerManager:
    #: messages of major 1 up to this minor are accepted; 1.1 added ``migration_uuid``
    RPC_API_VERSION = "1.1"

    def select_destinations(self, ctx: RequestContext, request_spec: dict,
                            instance_uuid: str, claim: bool = True,
                            migration_uuid: str | None = None) -> list[dict]:
        with groups.serialized(request_spec):  # members of one group: one at a time
            return self._select(ctx, request_spec, instance_uuid, claim, migration_uuid)

    def _select(self, ctx: RequestContext, request_spec: dict, instance_uuid: str,
                claim: bool, migration_uuid: str | None = None) -> list[dict]:
        spec = request_spec
        move = request.move(spec)
        flavor = spec["flavor"]
        wanted = request.resources(flavor, volume_backed=bool(spec.get("is_bfv")))
        required, forbidden = request.traits(flavor)
        states = all_host_states()
        member_of = _cell_constraints(spec, move, states)
        candidates, summaries = services.placement.get_allocation_candidates(
            wanted, required_traits=required, forbidden_traits=forbidden, member_of=member_of,
            limit=CONF.scheduler.max_placement_results)
        if not candidates:
            raise exception.NoValidHost(reason=self._why_none(wanted, required, move, states))
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
        placed = groups.for_spec(spec, states)  # the server group the request must honour
        hosts = groups.filter_hosts(placed, filters.filter_hosts(hosts, spec))
        hosts = hints.filter_hosts(spec, hosts, states)  # same_host, different_host
        hosts = groups.weigh(placed, weighers.weigh(hosts, spec))
        if not hosts:
            raise exception.NoValidHost(reason="There are not enough hosts available: every "
                                               "candidate was filtered out (service down or "
                                               "disabled, host ignored, or not the requested "
                                               "host or zone).")
        for index, host in enumerate(hosts):
            allocation = by_rp[host.uuid]["allocations"]
            if claim and not self._claim(instance_uuid, allocation, spec, migration_uuid):
                LOG.info("Claim on %s lost to a concurrent request; trying the next host",
                         host.host)
                continue
            chosen = _selection(host, allocation)
            # Alternates stay in the chosen host's cell: a retry (of a build or of a
            # move) reuses what was prepared in that cell.
            others = [h for h in hosts[index + 1:] if h.cell.uuid == host.cell.uuid]
            alternates = [_selection(h, by_rp[h.uuid]["allocations"])
                          for h in others[:CONF.scheduler.max_attempts - 1]]
            return [chosen, *alternates]
        raise exception.NoValidHost(reason="Every suitable host was taken by concurrent "
                                           "requests.")

    @staticmethod
    def _claim(instance_uuid: str, allocation: dict, spec: dict,
               migration_uuid: str | None) -> bool:
        """Claim the host; for a move, in the same write that hands the server's source
        allocation to its migration (one Placement transaction, not two)."""
        if migration_uuid is None:
            return services.placement.claim(instance_uuid, allocation, spec["project_id"],
                                            spec["user_id"])
        return services.placement.claim_moving(instance_uuid, allocation, spec["project_id"],
                                               spec["user_id"], migration_uuid)

    @staticmethod
    def _why_none(wanted: dict, required: list[str], move: request.Move | None,
                  states: dict[str, HostState]) -> str:
        text = "There are not enough hosts available for " + ", ".join(
            f"{rc}={amount}" for rc, amount in sorted(wanted.items()))
        if required:
            text += " with traits " + ", ".join(required)
        if move is not None and not move.allow_cross_cell:
            text += (f" in the source cell {_cell_name(move.source_cell_uuid, states)} "
                     "(this move may not cross cells)")
        return text + "."


def _cell_name(cell_uuid: str, states: dict[str, HostState]) -> str:
    return next((s.cell.name for s in states.values() if s.cell.uuid == cell_uuid), cell_uuid)


def _cell_constraints(spec: dict, move: request.Move | None,
                      states: dict[str, HostState]) -> list[list[str]]:
    """Placement ``member_of`` groups (cell aggregates) the request confines itself to.

    Each cell is one Placement aggregate whose uuid is the cell uuid, so a
    zone, a requested host and a move that must stay home all become cell
    constraints. Contradictions are refused here, with the reason, rather
    than left to come back as an unexplained empty candidate list.
    """
    member_of: list[list[str]] = []
    stay_home = move is not None and not move.allow_cross_cell
    source = move.source_cell_uuid if move is not None else ""
    if stay_home and not any(s.cell.uuid == source for s in states.values()):
        raise exception.NoValidHost(reason=f"The source cell {source} of this move has no "
                                           "compute hosts, and the move may not cross cells.")
    zone = spec.get("availability_zone")
    if zone:
        zone_cells = sorted({s.cell.uuid for s in states.values()
                             if s.availability_zone == zone})
        if not zone_cells:
            raise exception.NoValidHost(reason=f"No host is in availability zone {zone}.")
        if stay_home and source not in zone_cells:
            raise exception.NoValidHost(
                reason=f"Availability zone {zone} is not the source cell "
                       f"{_cell_name(source, states)} of this move, and the move may not "
                       "cross cells.")
        member_of.append(zone_cells)
    wanted_host = (spec.get("requested_destination") or {}).get("host")
    if wanted_host:
        host_cell = next((s.cell for s in states.values() if s.host == wanted_host), None)
        if host_cell is None:
            raise exception.NoValidHost(reason=f"Requested destination host {wanted_host} is "
                                               "not a compute host of any cell.")
        if stay_home and host_cell.uuid != source:
            raise exception.NoValidHost(
                reason=f"Requested destination host {wanted_host} is in cell "
                       f"{host_cell.name}, but this move may not leave its source cell "
                       f"{_cell_name(source, states)} (cross-cell moves are not allowed "
                       "for it).")
        member_of.append([host_cell.uuid])
    if stay_home:
        member_of.append([source])
    return member_of


def _free(resource: dict | None) -> float:
    if not resource:
        return 0
    return resource.get("capacity", 0) - resource.get("used", 0)


def _selection(host: HostState, allocation: dict) -> dict:
    return {"host": host.host, "nodename": host.nodename, "compute_node_uuid": host.uuid,
            "cell_uuid": host.cell.uuid, "allocation_request": allocation}
