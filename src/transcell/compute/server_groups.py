"""Server groups: records in the API database, their members, and their quotas.

A group and its members live in the API database because a group's members
may sit in several cells at once (an anti-affinity group spread over cells, a
member half way through a cross-cell move), and the scheduler of every move
must see the whole group. Where members run is not stored here: it is read
from the cells when a request is scheduled (``transcell.scheduler.groups``),
so a member that moved is never placed by a stale record.
"""

from __future__ import annotations

import uuid as uuidlib
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, func, select

from transcell import exception, quota
from transcell.conf import CONF
from transcell.context import RequestContext
from transcell.db import api_models as am
from transcell.db.session import api_session

AFFINITY = "affinity"
ANTI_AFFINITY = "anti-affinity"
SOFT_AFFINITY = "soft-affinity"
SOFT_ANTI_AFFINITY = "soft-anti-affinity"
POLICIES = (AFFINITY, ANTI_AFFINITY, SOFT_AFFINITY, SOFT_ANTI_AFFINITY)
#: before 2.15 only the hard policies exist
HARD_POLICIES = (AFFINITY, ANTI_AFFINITY)


class GroupNotFound(exception.NotFound):
    msg_fmt = "Instance group %(group_uuid)s could not be found."


@dataclass
class Group:
    id: int
    uuid: str
    name: str | None
    project_id: str
    user_id: str
    policy: str
    rules: dict[str, Any] = field(default_factory=dict)
    members: list[str] = field(default_factory=list)

    @property
    def max_server_per_host(self) -> int:
        """How many members one host may run; only anti-affinity sets it (default 1)."""
        return int(self.rules.get("max_server_per_host") or 1)


def limit_of(resource: str, project_id: str | None = None) -> int:
    """A project's limit on ``resource`` (-1 = unlimited): what the quota module says
    (the project's own limits where it keeps them), else the configured default."""
    try:
        found = quota.limits(project_id)  # type: ignore[call-arg]
    except TypeError:  # a quota module without per-project limits
        found = quota.limits()
    limit = found.get(resource)
    return getattr(CONF.quota, resource) if limit is None else int(limit)


def _live_members(group_id: int):
    """A group's members whose servers still exist: a server deleted by a path that did
    not remove its membership (reclaimed after a soft delete, forgotten after a refused
    build) is not a member any more, wherever its row was left."""
    return (select(am.InstanceGroupMember.instance_uuid)
            .join(am.InstanceMapping,
                  am.InstanceMapping.instance_uuid == am.InstanceGroupMember.instance_uuid)
            .where(am.InstanceGroupMember.group_id == group_id,
                   am.InstanceMapping.queued_for_delete.is_(False))
            .order_by(am.InstanceGroupMember.id))


def _load(session, row: am.InstanceGroup) -> Group:
    members = list(session.scalars(_live_members(row.id)))
    return Group(row.id, row.uuid, row.name, row.project_id, row.user_id, row.policy,
                 dict(row.rules or {}), members)


def create(ctx: RequestContext, name: str, policy: str, rules: dict[str, Any] | None) -> Group:
    """A new group of the caller's project, within its ``server_groups`` quota.

    The count is taken again once the row is written, so of two requests
    racing for the last group at most one keeps it.
    """
    limit = limit_of("server_groups", ctx.project_id)
    if limit != quota.UNLIMITED and count(ctx.project_id) >= limit:
        raise exception.OverQuota("Quota exceeded, too many server groups.",
                                  resource="server_groups")
    with api_session() as s:
        row = am.InstanceGroup(uuid=str(uuidlib.uuid4()), name=name,
                               project_id=ctx.project_id, user_id=ctx.user_id, policy=policy,
                               rules=rules or {})
        s.add(row)
        s.flush()
        group = _load(s, row)
    if limit != quota.UNLIMITED and count(ctx.project_id) > limit:
        with api_session() as s:
            s.execute(delete(am.InstanceGroup).where(am.InstanceGroup.id == group.id))
        raise exception.OverQuota("Quota exceeded, too many server groups.",
                                  resource="server_groups")
    return group


def count(project_id: str) -> int:
    with api_session() as s:
        return int(s.scalar(select(func.count(am.InstanceGroup.id))
                            .where(am.InstanceGroup.project_id == project_id)) or 0)


def get(group_uuid: str) -> Group:
    with api_session() as s:
        row = s.scalar(select(am.InstanceGroup).where(am.InstanceGroup.uuid == group_uuid))
        if row is None:
            raise GroupNotFound(group_uuid=group_uuid)
        return _load(s, row)


def visible(ctx: RequestContext, group_uuid: str) -> Group:
    """The group, if the caller's project owns it (or the caller is an admin)."""
    group = get(group_uuid)
    if not ctx.is_admin and group.project_id != ctx.project_id:
        raise GroupNotFound(group_uuid=group_uuid)
    return group


def list_groups(project_id: str | None) -> list[Group]:
    """The groups of ``project_id``, or of every project when None; oldest first."""
    with api_session() as s:
        query = select(am.InstanceGroup).order_by(am.InstanceGroup.id)
        if project_id is not None:
            query = query.where(am.InstanceGroup.project_id == project_id)
        return [_load(s, row) for row in s.scalars(query)]


def delete_group(group_uuid: str) -> None:
    """The group and its memberships go; its servers stay where they run."""
    with api_session() as s:
        row = s.scalar(select(am.InstanceGroup).where(am.InstanceGroup.uuid == group_uuid))
        if row is None:
            raise GroupNotFound(group_uuid=group_uuid)
        s.execute(delete(am.InstanceGroupMember)
                  .where(am.InstanceGroupMember.group_id == row.id))
        s.delete(row)


def group_of(instance_uuid: str) -> Group | None:
    """The group a server is a member of (a server is in at most one)."""
    with api_session() as s:
        row = s.scalar(select(am.InstanceGroup)
                       .join(am.InstanceGroupMember,
                             am.InstanceGroupMember.group_id == am.InstanceGroup.id)
                       .where(am.InstanceGroupMember.instance_uuid == instance_uuid)
                       .limit(1))
        return None if row is None else _load(s, row)


def check_members_quota(group: Group, adding: int) -> None:
    """Nova's 403 when ``adding`` servers would take the group over its member quota."""
    limit = limit_of("server_group_members", group.project_id)
    if limit != quota.UNLIMITED and len(group.members) + adding > limit:
        raise exception.OverQuota("Quota exceeded, too many servers in group",
                                  resource="server_group_members")


def add_member(group: Group, instance_uuid: str) -> None:
    """Record a new server as a member before it is scheduled, so the scheduler
    (and any build racing it) sees it in the group; the member quota is counted
    again with the row on disk."""
    with api_session() as s:
        s.add(am.InstanceGroupMember(group_id=group.id, instance_uuid=instance_uuid))
    limit = limit_of("server_group_members", group.project_id)
    if limit != quota.UNLIMITED:
        with api_session() as s:
            members = len(s.scalars(_live_members(group.id)).all())
        if members > limit:
            remove_member(instance_uuid)
            raise exception.OverQuota("Quota exceeded, too many servers in group",
                                      resource="server_group_members")


def remove_member(instance_uuid: str) -> None:
    """A deleted (or never built) server leaves its group."""
    with api_session() as s:
        s.execute(delete(am.InstanceGroupMember)
                  .where(am.InstanceGroupMember.instance_uuid == instance_uuid))


def groups_of(instance_uuid: str) -> list[str]:
    """Uuids of the groups the server is in, as the 2.71 server view lists them."""
    group = group_of(instance_uuid)
    return [group.uuid] if group else []
