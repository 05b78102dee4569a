"""Quota: limits from configuration, usage counted live across every cell.

Usage is never stored: it is counted from the cells when asked, so a server
moving between cells (two rows, one hidden) is counted once, and a cell
restored from backup cannot leave a stale counter behind.
"""

from __future__ import annotations

from sqlalchemy import func, select

from transcell import cell as cells
from transcell import exception
from transcell.conf import CONF
from transcell.context import RequestContext
from transcell.db import api_models as am
from transcell.db import cell_models as cm
from transcell.db.session import api_session, cell_session

#: Resources counted from instances, in the order messages name them.
INSTANCE_RESOURCES = ("cores", "instances", "ram")

UNLIMITED = -1


def limits() -> dict[str, int]:
    """Per-project limits (-1 = unlimited)."""
    return {"instances": CONF.quota.instances, "cores": CONF.quota.cores,
            "ram": CONF.quota.ram, "key_pairs": CONF.quota.key_pairs}


def usage(project_id: str, user_id: str | None = None) -> dict[str, int]:
    """Live, visible servers of a project in all cells (cell0 included), and their size."""
    def count(cell: cells.Cell) -> tuple[int, int, int]:
        query = (select(func.count(cm.Instance.id), func.coalesce(func.sum(cm.Instance.vcpus), 0),
                        func.coalesce(func.sum(cm.Instance.memory_mb), 0))
                 .where(cm.Instance.project_id == project_id, cm.Instance.deleted == 0,
                        cm.Instance.hidden.is_(False)))
        if user_id is not None:
            query = query.where(cm.Instance.user_id == user_id)
        with cell_session(cell) as s:
            n, vcpus, ram = s.execute(query).one()
        return int(n), int(vcpus), int(ram)

    totals = {"instances": 0, "cores": 0, "ram": 0}
    for n, vcpus, ram in cells.scatter(cells.list_cells(), count).values():
        totals["instances"] += n
        totals["cores"] += vcpus
        totals["ram"] += ram
    cores, ram = _moving_surplus(project_id, user_id)
    totals["cores"] += cores
    totals["ram"] += ram
    return totals


def _moving_surplus(project_id: str, user_id: str | None) -> tuple[int, int]:
    """What the project's moves in flight hold beyond what their rows show.

    A server being resized is counted at the larger of its old and new
    flavors until its move ends, as Placement holds both: the move cannot be
    overtaken by a build taking the cores it will need, and a revert (back to
    a larger flavor) is already paid for.
    """
    from transcell.move import saga as sagas
    cores = ram = 0
    for saga in sagas.Saga.with_status(*sagas.IN_FLIGHT):
        res = saga.resources
        if res.get("project_id") != project_id:
            continue
        if user_id is not None and saga.context.get("user_id") != user_id:
            continue
        old, new = res.get("old_flavor") or {}, res.get("new_flavor") or {}
        try:
            cell = cells.cell_of_instance(saga.instance_uuid)
        except exception.NotFound:
            continue
        with cell_session(cell) as s:
            row = s.execute(select(cm.Instance.vcpus, cm.Instance.memory_mb)
                            .where(cm.Instance.uuid == saga.instance_uuid,
                                   cm.Instance.deleted == 0,
                                   cm.Instance.hidden.is_(False))).first()
        if row is None:
            continue
        cores += max(old.get("vcpus", 0), new.get("vcpus", 0), row.vcpus or 0) - (row.vcpus or 0)
        ram += (max(old.get("memory_mb", 0), new.get("memory_mb", 0), row.memory_mb or 0)
                - (row.memory_mb or 0))
    return cores, ram


def key_pair_count(user_id: str) -> int:
    with api_session() as s:
        return int(s.scalar(select(func.count(am.KeyPair.id))
                            .where(am.KeyPair.user_id == user_id)) or 0)


def check_deltas(ctx: RequestContext, project_id: str, instances: int = 0, cores: int = 0,
                 ram: int = 0) -> None:
    """Refuse (403) a change that would take the project over a limit.

    Only growth is checked: a delta of zero or less (a smaller resize, a
    delete) always passes, even for a project already over its limit.
    """
    _check(project_id, {"instances": instances, "cores": cores, "ram": ram}, counted=False)


def recheck(project_id: str, instances: int = 0, cores: int = 0, ram: int = 0) -> None:
    """Refuse (403) a change whose records already exist if it took the project over.

    The check before the records are written lets racing requests all pass;
    counting again after each one's records are on disk cannot: the last of
    them to count sees every other, so at most the limit is ever admitted
    (two racing for the last slot may both be refused, never both admitted).
    Only resources the change grows are rechecked, so a project over a
    lowered limit can still shrink.
    """
    _check(project_id, {"instances": instances, "cores": cores, "ram": ram}, counted=True)


def _check(project_id: str, deltas: dict[str, int], counted: bool) -> None:
    """``counted``: the usage already includes the change (its records exist)."""
    if all(delta <= 0 for delta in deltas.values()):
        return
    allowed = limits()
    used = usage(project_id)
    for resource in INSTANCE_RESOURCES:
        delta, limit = deltas[resource], allowed[resource]
        if delta <= 0 or limit == UNLIMITED:
            continue
        before = used[resource] - delta if counted else used[resource]
        if before + delta > limit:
            raise exception.OverQuota(
                f"Quota exceeded for {resource}: Requested {delta}, but already used "
                f"{before} of {limit} {resource}", resource=resource)


def check_key_pairs(user_id: str, delta: int = 1) -> None:
    limit = CONF.quota.key_pairs
    if limit != UNLIMITED and key_pair_count(user_id) + delta > limit:
        raise exception.OverQuota("Quota exceeded, too many key pairs.", resource="key_pairs")
