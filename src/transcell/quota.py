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
    return totals


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
    deltas = {"instances": instances, "cores": cores, "ram": ram}
    if all(delta <= 0 for delta in deltas.values()):
        return
    allowed = limits()
    used = usage(project_id)
    for resource in INSTANCE_RESOURCES:
        delta = deltas[resource]
        limit = allowed[resource]
        if delta <= 0 or limit == UNLIMITED:
            continue
        if used[resource] + delta > limit:
            raise exception.OverQuota(
                f"Quota exceeded for {resource}: Requested {delta}, but already used "
                f"{used[resource]} of {limit} {resource}", resource=resource)


def check_key_pairs(user_id: str, delta: int = 1) -> None:
    limit = CONF.quota.key_pairs
    if limit != UNLIMITED and key_pair_count(user_id) + delta > limit:
        raise exception.OverQuota("Quota exceeded, too many key pairs.", resource="key_pairs")
