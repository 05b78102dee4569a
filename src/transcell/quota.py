"""Quota: limits stored per project (and user), usage counted live across every cell.

Usage is never stored: it is counted from the cells when asked, so a server
moving between cells (two rows, one hidden) is counted once, and a cell
restored from backup cannot leave a stale counter behind.

A limit is read, first found wins, from the user's own override (a row of
``quotas`` with the user's id), the project's override (``user_id`` ''), the
``default`` quota class (``quota_classes``), then the ``[quota]`` options; so
an operator changes the cloud's defaults through the API without a restart,
and the options only seed a cloud nobody has tuned.
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

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

#: The quota class whose limits replace the configured defaults.
DEFAULT_CLASS = "default"

#: Every resource a quota set names, under Nova's names, with the option it defaults to.
_OPTION_OF = {
    "instances": "instances", "cores": "cores", "ram": "ram", "key_pairs": "key_pairs",
    "metadata_items": "metadata_items", "server_groups": "server_groups",
    "server_group_members": "server_group_members", "injected_files": "injected_files",
    "injected_file_content_bytes": "injected_file_content_bytes",
    "injected_file_path_bytes": "injected_file_path_length",
}

#: Network resources quota sets showed before 2.36 (Neutron enforces its own):
#: kept with Nova's defaults so old clients find their keys; settable, never enforced.
NETWORK_DEFAULTS = {"floating_ips": 10, "fixed_ips": UNLIMITED, "security_groups": 10,
                    "security_group_rules": 20}

RESOURCES = tuple(_OPTION_OF) + tuple(NETWORK_DEFAULTS)


def configured_defaults() -> dict[str, int]:
    """The ``[quota]`` options (and the fixed network defaults), before any quota class."""
    found = {name: int(getattr(CONF.quota, option)) for name, option in _OPTION_OF.items()}
    found.update(NETWORK_DEFAULTS)
    return found


def class_limits(class_name: str = DEFAULT_CLASS) -> dict[str, int]:
    """A quota class's limits; what the class does not set comes from ``default``, then
    the options (so an unknown class reads as the defaults, as in Nova)."""
    found = configured_defaults()
    names = [DEFAULT_CLASS] if class_name == DEFAULT_CLASS else [DEFAULT_CLASS, class_name]
    with api_session() as s:
        rows = s.execute(select(am.QuotaClass.class_name, am.QuotaClass.resource,
                                am.QuotaClass.hard_limit)
                         .where(am.QuotaClass.class_name.in_(names))).all()
    for wanted in names:  # the named class last: it wins over ``default``
        for name, resource, limit in rows:
            if name == wanted and resource in found:
                found[resource] = limit
    return found


def overrides(project_id: str, user_id: str | None = None) -> dict[str, int]:
    """The limits stored for the project ('' user) or for one of its users."""
    with api_session() as s:
        rows = s.execute(select(am.Quota.resource, am.Quota.hard_limit)
                         .where(am.Quota.project_id == project_id,
                                am.Quota.user_id == (user_id or ""))).all()
    return {resource: limit for resource, limit in rows if resource in RESOURCES}


def limits(project_id: str | None = None, user_id: str | None = None) -> dict[str, int]:
    """Limits (-1 = unlimited) of every resource: of the project (and of one of its
    users, when ``user_id``), else the cloud's defaults."""
    found = class_limits(DEFAULT_CLASS)
    if project_id is not None:
        found.update(overrides(project_id))
        if user_id is not None:
            found.update(overrides(project_id, user_id))
    return found


def set_limits(project_id: str, values: dict[str, int], user_id: str | None = None) -> None:
    """Store overrides of the project's (or one user's) limits, replacing earlier ones."""
    _store(am.Quota, {"project_id": project_id, "user_id": user_id or ""}, values)


def set_class_limits(class_name: str, values: dict[str, int]) -> None:
    _store(am.QuotaClass, {"class_name": class_name}, values)


def _store(model, keys: dict[str, str], values: dict[str, int]) -> None:
    """Insert or update one row per resource, all or nothing. Two requests racing to
    insert the same first row: the loser's insert breaks the unique constraint, and
    its second pass finds the row and updates it (the last writer wins, as in Nova)."""
    for attempt in range(2):
        try:
            with api_session() as s:
                existing = {row.resource: row
                            for row in s.scalars(select(model).filter_by(**keys))}
                for resource, limit in values.items():
                    row = existing.get(resource)
                    if row is None:
                        s.add(model(resource=resource, hard_limit=int(limit), **keys))
                    else:
                        row.hard_limit = int(limit)
            return
        except IntegrityError:
            if attempt:
                raise


def forget_limits(project_id: str, user_id: str | None = None) -> None:
    """Drop the overrides: the project (with its users' overrides too) or one user goes
    back to the defaults."""
    with api_session() as s:
        query = s.query(am.Quota).filter(am.Quota.project_id == project_id)
        if user_id is not None:
            query = query.filter(am.Quota.user_id == user_id)
        query.delete(synchronize_session=False)


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


def server_group_count(project_id: str, user_id: str | None = None) -> int:
    with api_session() as s:
        query = select(func.count(am.InstanceGroup.id)).where(
            am.InstanceGroup.project_id == project_id)
        if user_id is not None:
            query = query.where(am.InstanceGroup.user_id == user_id)
        return int(s.scalar(query) or 0)


def in_use(project_id: str, user_id: str | None = None) -> dict[str, int]:
    """Every resource's use, as a quota set's detail shows it: servers counted live
    in every cell, key pairs (a user's own) and server groups from the API database;
    per-server limits (metadata, files, group members) and network resources use 0."""
    used = dict.fromkeys(RESOURCES, 0)
    used.update(usage(project_id, user_id))
    used["server_groups"] = server_group_count(project_id, user_id)
    if user_id is not None:
        used["key_pairs"] = key_pair_count(user_id)
    return used


def check_deltas(ctx: RequestContext, project_id: str, instances: int = 0, cores: int = 0,
                 ram: int = 0, user_id: str | None = None) -> None:
    """Refuse (403) a change that would take the project (or the user, ``user_id``
    or, in the caller's own project, the caller) over a limit.

    Only growth is checked: a delta of zero or less (a smaller resize, a
    delete) always passes, even for a project already over its limit.
    """
    if user_id is None and ctx.project_id == project_id:
        user_id = ctx.user_id
    _check(project_id, {"instances": instances, "cores": cores, "ram": ram}, counted=False,
           user_id=user_id)


def recheck(project_id: str, instances: int = 0, cores: int = 0, ram: int = 0,
            user_id: str | None = None) -> None:
    """Refuse (403) a change whose records already exist if it took the project over.

    The check before the records are written lets racing requests all pass;
    counting again after each one's records are on disk cannot: the last of
    them to count sees every other, so at most the limit is ever admitted
    (two racing for the last slot may both be refused, never both admitted).
    Only resources the change grows are rechecked, so a project over a
    lowered limit can still shrink.
    """
    _check(project_id, {"instances": instances, "cores": cores, "ram": ram}, counted=True,
           user_id=user_id)


def check_revert(ctx: RequestContext, server: dict, old_flavor: dict,
                 new_flavor: dict) -> None:
    """Refuse (403) reverting a resize whose old flavor no longer fits the limits.

    While the move is in flight the server is already counted at the larger of
    its flavors (``usage``), so this passes unless the limits were lowered
    since the resize began, which is when Nova refuses a revert too.
    """
    recheck(server["project_id"], user_id=server.get("user_id"),
            cores=max(0, old_flavor.get("vcpus", 0) - new_flavor.get("vcpus", 0)),
            ram=max(0, old_flavor.get("memory_mb", 0) - new_flavor.get("memory_mb", 0)))


def check_unshelve(ctx: RequestContext, server: dict) -> None:
    """Refuse (403) unshelving a server the project's limits no longer hold.

    A shelved-offloaded server is still counted (its row lives on), so the
    question is whether the project, this server included, is within its
    limits for what the server takes back: its cores and RAM. Call it before
    the unshelve is recorded; ``server`` needs project_id, user_id and flavor.
    """
    flavor = server.get("flavor") or {}
    recheck(server["project_id"], user_id=server.get("user_id"),
            cores=flavor.get("vcpus", 0), ram=flavor.get("memory_mb", 0))


def _check(project_id: str, deltas: dict[str, int], counted: bool,
           user_id: str | None = None) -> None:
    """``counted``: the usage already includes the change (its records exist)."""
    if all(delta <= 0 for delta in deltas.values()):
        return
    _check_against(limits(project_id), usage(project_id), deltas, counted)
    if user_id is not None:
        own = overrides(project_id, user_id)
        if any(resource in own for resource in INSTANCE_RESOURCES):
            _check_against(limits(project_id, user_id), usage(project_id, user_id), deltas,
                           counted)


def _check_against(allowed: dict[str, int], used: dict[str, int], deltas: dict[str, int],
                   counted: bool) -> None:
    for resource in INSTANCE_RESOURCES:
        delta, limit = deltas[resource], allowed[resource]
        if delta <= 0 or limit == UNLIMITED:
            continue
        before = used[resource] - delta if counted else used[resource]
        if before + delta > limit:
            raise exception.OverQuota(
                f"Quota exceeded for {resource}: Requested {delta}, but already used "
                f"{before} of {limit} {resource}", resource=resource)


def check_key_pairs(user_id: str, delta: int = 1, project_id: str | None = None) -> None:
    limit = limits(project_id, user_id if project_id else None)["key_pairs"]
    if limit != UNLIMITED and key_pair_count(user_id) + delta > limit:
        raise exception.OverQuota("Quota exceeded, too many key pairs.", resource="key_pairs")
