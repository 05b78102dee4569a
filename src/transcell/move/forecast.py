"""A move plan: what a resize or migration would do, computed without doing it.

The operator asks before a maintenance window which servers can leave a
cell, what each volume and port would go through, how many bytes would
travel and how long each guest would be down. Nothing is claimed or
changed: the scheduler is asked without a claim, the compute host only
describes the disk, and the volume and network services answer the same
questions a real move asks them (``move.reach``), so a move refuses for
exactly the blockers its plan lists.

Predictions come from the moves this cloud has finished: their measured
transfer rates and the time they spent outside the transfer. Before any
move has finished, a stated default rate is used and the plan says so.
"""

from __future__ import annotations

import logging
import statistics
from typing import Any

from sqlalchemy import select

from transcell import cell as cells
from transcell import exception
from transcell.compute import vm_states as vm
from transcell.compute.rpcapi import ComputeAPI
from transcell.conf import CONF
from transcell.context import RequestContext
from transcell.db import api_models as am
from transcell.db.session import api_session
from transcell.move import precopy, reach, records
from transcell.move import saga as sagas
from transcell.move.plan import move_spec, request_refusals

LOG = logging.getLogger(__name__)

#: Rate assumed for data (MiB/s) before this cloud has measured a move of its own.
DEFAULT_MIB_S = 100.0
#: Time (s) a move spends outside its data transfer, assumed likewise.
DEFAULT_OVERHEAD_S = 1.0
#: Finished moves whose measurements feed a prediction.
HISTORY = 50
MIB = 1024 * 1024


def plan_server(ctx: RequestContext, server: dict, cell: cells.Cell, *,
                flavor: dict | None = None, host: str | None = None,
                allow_cross_cell: bool = True, readdress: bool | None = None,
                history: dict | None = None, leave_cell: bool = False) -> dict[str, Any]:
    """The plan of one server's move; ``history`` is shared when planning many, and
    ``leave_cell`` keeps every host of the server's cell out (a cell being drained)."""
    history = history if history is not None else measured_rates()
    new_flavor = flavor or server["flavor"] or {}
    plan: dict[str, Any] = {
        "server_id": server["uuid"], "name": server["display_name"],
        "kind": "resize" if flavor is not None else "migration",
        "source": {"cell": cell.name, "host": server["host"]},
        "target": None, "alternates": [], "disk": None, "volumes": [], "ports": [],
        "bytes_to_move": 0, "predicted": None, "blockers": [],
    }
    blockers = plan["blockers"]
    blockers.extend(_state_blockers(server, new_flavor, flavor is not None, host))
    if blockers:
        plan["movable"] = False
        return plan
    try:
        selections = _select(ctx, server, cell, new_flavor, host, allow_cross_cell,
                             cells.hosts_in_cell(cell) if leave_cell else [])
    except exception.NoValidHost as exc:
        blockers.append(exc.message)
        plan["movable"] = False
        return plan
    chosen = selections[0]
    target_cell = cells.get_cell(chosen["cell_uuid"])
    plan["target"] = {"cell": target_cell.name, "host": chosen["host"],
                      "node": chosen["nodename"]}
    plan["alternates"] = [s["host"] for s in selections[1:]]
    found = reach.check(ctx, records.volume_ids(cell, server["uuid"]),
                        records.port_ids(server), chosen["host"], target_cell.name,
                        reach.readdress_wanted(readdress))
    plan["volumes"], plan["ports"] = found["volumes"], found["ports"]
    blockers.extend(found["blockers"])
    plan["disk"] = _disk(ctx, server)
    disk_bytes = (plan["disk"] or {}).get("allocated_bytes", 0)
    volume_bytes = sum(v.get("bytes") or 0 for v in plan["volumes"]
                       if v["action"] == reach.MIGRATE)
    plan["bytes_to_move"] = disk_bytes + volume_bytes
    disk = plan["disk"] or {}
    # a disk that holds next to nothing over its image is not pre-copied (``precopy.skipped``)
    quiet = bool(disk.get("on_image")) and disk_bytes <= precopy.stop_bytes()
    precopied = (server["vm_state"] == vm.ACTIVE and CONF.conductor.precopy_max_rounds > 0
                 and bool(disk.get("exists")) and not quiet)
    plan["predicted"] = predict(disk_bytes, volume_bytes, history, precopied)
    plan["movable"] = not blockers
    return plan


def plan_cell(ctx: RequestContext, cell_name: str, *, allow_cross_cell: bool = True,
              readdress: bool | None = None) -> list[dict[str, Any]]:
    """A cold migration out of the cell for every server of it, each planned on its own.

    Plans do not claim, so two servers may be shown the same free slot; a
    drain moving them in waves finds out at scheduling time.
    """
    from transcell.compute.api import API
    cell = cells.get_cell(cell_name)
    history = measured_rates()
    compute = API()
    plans = []
    for mapping in cells.mappings_in_cell(cell):
        try:
            _, server = compute.get(ctx, mapping["uuid"])
        except exception.InstanceNotFound:
            continue
        plans.append(plan_server(ctx, server, cell, allow_cross_cell=allow_cross_cell,
                                 readdress=readdress, history=history, leave_cell=True))
    return plans


def _state_blockers(server: dict, flavor: dict, resize: bool, host: str | None) -> list[str]:
    reasons = []
    if server["vm_state"] not in (vm.ACTIVE, vm.STOPPED):
        reasons.append(f"the server is {server['vm_state']}; only an active or stopped "
                       "server can move")
    if server.get("task_state"):
        reasons.append(f"the server is busy ({server['task_state']})")
    reasons.extend(request_refusals(server, flavor if resize else None, host))
    return reasons


def _select(ctx: RequestContext, server: dict, cell: cells.Cell, flavor: dict,
            host: str | None, allow_cross_cell: bool, ignore: list[str]) -> list[dict]:
    from transcell.rpc.bus import get_bus
    from transcell.scheduler.rpcapi import SchedulerAPI
    spec = move_spec(server, cell.uuid, flavor, host, allow_cross_cell,
                     sorted({server["host"], *ignore}), any_zone=bool(ignore))
    return SchedulerAPI(get_bus(CONF.rpc.transport_url)).select_destinations(
        ctx, spec, server["uuid"], claim=False)


def _disk(ctx: RequestContext, server: dict) -> dict | None:
    try:
        return ComputeAPI().describe_disk(ctx, server["host"], server["uuid"])
    except Exception as exc:  # a plan reports what it could not learn, it does not fail
        LOG.warning("Could not describe the disk of %s on %s: %s", server["uuid"],
                    server["host"], exc)
        return {"host": server["host"], "error": str(exc), "allocated_bytes": 0}


# predictions ------------------------------------------------------------------------
def measured_rates(limit: int = HISTORY) -> dict[str, Any]:
    """Transfer rates and fixed costs of this cloud's most recent finished moves."""
    with api_session() as s:
        rows = s.scalars(select(am.MoveSaga).where(am.MoveSaga.status.in_(
            (sagas.MOVED, sagas.CONFIRMED, sagas.REVERTED, sagas.CONFIRMING,
             sagas.REVERTING))).order_by(am.MoveSaga.id.desc()).limit(limit)).all()
        found = [dict(r.resources or {}) for r in rows]
    moved = sent = 0.0
    overheads, downtime_overheads = [], []
    for res in found:
        transfer = (res.get("upload_seconds") or 0) + (res.get("download_seconds") or 0)
        data = (res.get("bytes_uploaded") or 0) + (res.get("bytes_downloaded") or 0)
        if data and transfer:
            moved += data
            sent += transfer
        total = (res.get("moved_at") or 0) - (res.get("started_at") or 0)
        if total > 0:
            overheads.append(max(0.0, total - transfer))
        if res.get("stopped_at") and res.get("running_at"):
            downtime_overheads.append(max(0.0, res["running_at"] - res["stopped_at"]
                                          - transfer))
    measured = bool(moved and sent)
    return {
        "basis": f"{len(found)} recent moves" if measured else "default rate (no move "
                                                                "measured yet)",
        "mib_s": round(moved / sent / MIB, 1) if measured else DEFAULT_MIB_S,
        "overhead_s": statistics.median(overheads) if overheads else DEFAULT_OVERHEAD_S,
        "downtime_overhead_s": (statistics.median(downtime_overheads)
                                if downtime_overheads else DEFAULT_OVERHEAD_S),
    }


def predict(disk_bytes: int, volume_bytes: int, history: dict[str, Any],
            precopied: bool = False) -> dict[str, Any]:
    """Every byte is sent to the store and fetched from it once. Volumes travel after
    the guest stops; so does the root disk, unless it is ``precopied`` while the guest
    runs (a running server's local disk), when what the guest writes meanwhile is
    all the stop waits for, assumed small."""
    rate = history["mib_s"] * MIB
    transfer = 2 * (disk_bytes + volume_bytes) / rate
    stopped = 2 * (volume_bytes + (0 if precopied else disk_bytes)) / rate
    return {"move_seconds": round(history["overhead_s"] + transfer, 2),
            "downtime_seconds": round(history["downtime_overhead_s"] + stopped, 2),
            "precopy": precopied,
            "throughput_mib_s": history["mib_s"], "basis": history["basis"]}
