"""Security groups: a project's named sets of rules, and the ports that use them.

Groups are data only: transcell sends no traffic, so nothing enforces the
rules, but they are kept, checked and shown as Neutron does, and a port keeps
its groups wherever it is bound (a moved server keeps them). Each project has
one "default" group, made the first time the project needs it, with the rules
Neutron puts there; every other new group starts with egress allowed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Text, cast, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from transcell.context import RequestContext
from transcell.db.session import session_for
from transcell.network import attributes, scope, views
from transcell.network import exceptions as exc
from transcell.network.models import (
    DefaultSecurityGroup,
    Port,
    SecurityGroup,
    SecurityGroupRule,
    new_id,
)
from transcell.network.sg_rules import SecurityGroupRules

DEFAULT = "default"

SECURITY_GROUP: Mapping[str, attributes.Attr] = {
    "id": attributes.Attr(attributes.uuid_like),
    "name": attributes.Attr(attributes.string(255), put=True),
    "description": attributes.Attr(attributes.string(255), put=True),
    "stateful": attributes.Attr(attributes.choice(True)),
    "tenant_id": attributes.Attr(attributes.string(255)),
    "project_id": attributes.Attr(attributes.string(255)),
    "tags": attributes.Attr(attributes.string_list),
}


def _rule(group: SecurityGroup, direction: str, ethertype: str,
          remote_group_id: str | None = None) -> SecurityGroupRule:
    return SecurityGroupRule(security_group_id=group.id, project_id=group.project_id,
                             direction=direction, ethertype=ethertype,
                             remote_group_id=remote_group_id)


def default_rules(group: SecurityGroup) -> list[SecurityGroupRule]:
    """What Neutron puts in a default group: all egress, ingress from its members."""
    return [_rule(group, direction, ethertype,
                  group.id if direction == "ingress" else None)
            for ethertype in ("IPv4", "IPv6") for direction in ("egress", "ingress")]


def default_group_id(db_url: str, project_id: str) -> str:
    """The project's default group, created the first time anyone needs it.

    Created in a transaction of its own; the default_security_groups key makes
    a concurrent creator's attempt fail, and its winner is then read back.
    """
    query = select(DefaultSecurityGroup.security_group_id).where(
        DefaultSecurityGroup.project_id == project_id)
    for _attempt in range(3):
        with session_for(db_url) as session:
            found = session.scalar(query)
            if found:
                return found
        try:
            with session_for(db_url) as session:
                group = SecurityGroup(project_id=project_id, name=DEFAULT,
                                      description="Default security group")
                session.add(group)
                session.flush()
                session.add(DefaultSecurityGroup(project_id=project_id,
                                                 security_group_id=group.id))
                session.add_all(default_rules(group))
                session.flush()
                return group.id
        except IntegrityError:
            continue
    raise exc.SecurityGroupNotFound(id=DEFAULT)


def check_groups(db_url: str, ctx: RequestContext, group_ids: list[str]) -> list[str]:
    """Groups a port may use: ones the caller's project can see."""
    with session_for(db_url) as session:
        for group_id in group_ids:
            group = session.get(SecurityGroup, group_id)
            if group is None or not scope.owns(ctx, group.project_id):
                raise exc.SecurityGroupNotFound(id=group_id)
    return group_ids


def load_group(session: Session, ctx: RequestContext, group_id: Any) -> SecurityGroup:
    group = session.get(SecurityGroup, group_id) if isinstance(group_id, str) else None
    if group is None or not scope.owns(ctx, group.project_id):
        raise exc.SecurityGroupNotFound(id=group_id)
    return group


def is_default(session: Session, group: SecurityGroup) -> bool:
    return session.scalar(select(DefaultSecurityGroup.project_id).where(
        DefaultSecurityGroup.security_group_id == group.id)) is not None


def _ports_using(session: Session, group_id: str) -> list[str]:
    """Ports whose groups include ``group_id``: narrowed in SQL on the JSON text, decided
    on the decoded list."""
    text = cast(Port.security_groups, Text)
    rows = session.execute(select(Port.id, Port.security_groups)
                           .where(text.like(f'%"{group_id}"%'))).all()
    return [port_id for port_id, groups in rows if group_id in (groups or [])]


class SecurityGroups(SecurityGroupRules):
    db_url: str

    def _ensure_default(self, ctx: RequestContext) -> None:
        if ctx.project_id:
            default_group_id(self.db_url, ctx.project_id)

    def list_security_groups(self, ctx: RequestContext,
                             filters: scope.Filters | None = None) -> list[dict[str, Any]]:
        self._ensure_default(ctx)
        wanted = scope.normalize(filters)
        query = select(SecurityGroup).order_by(SecurityGroup.created_at, SecurityGroup.id)
        if not ctx.is_admin:
            query = query.where(SecurityGroup.project_id == ctx.project_id)
        query = scope.sql_prefilter(query, SecurityGroup, wanted, ("id", "tenant_id",
                                                                    "project_id"))
        with session_for(self.db_url) as session:
            bodies = [views.security_group(group) for group in session.scalars(query)]
        return [body for body in bodies if scope.matches(body, wanted)]

    def get_security_group(self, ctx: RequestContext, group_id: str) -> dict[str, Any]:
        self._ensure_default(ctx)
        with session_for(self.db_url) as session:
            return views.security_group(load_group(session, ctx, group_id))

    def create_security_group(self, ctx: RequestContext, body: dict[str, Any]
                              ) -> dict[str, Any]:
        values = attributes.check("security_group", SECURITY_GROUP, body, ctx, creating=True)
        values.pop("stateful", None)
        project = attributes.owner_project(ctx, values)
        if values.get("name") == DEFAULT:
            raise exc.SecurityGroupDefaultAlreadyExists()
        made = self._insert_group(project, values)
        default_group_id(self.db_url, project)  # a project's first group is not its default
        return made

    def _insert_group(self, project: str, values: dict[str, Any]) -> dict[str, Any]:
        with session_for(self.db_url) as session:
            group_id = values.pop("id", None) or new_id()
            if session.get(SecurityGroup, group_id) is not None:
                raise exc.SecurityGroupConflict(reason=f"group {group_id} already exists")
            group = SecurityGroup(id=group_id, project_id=project, name=values.pop("name", ""))
            attributes.apply(group, values)
            session.add(group)
            session.flush()
            session.add_all([_rule(group, "egress", "IPv4"), _rule(group, "egress", "IPv6")])
            session.flush()
            session.refresh(group)
            return views.security_group(group)

    def update_security_group(self, ctx: RequestContext, group_id: str,
                              body: dict[str, Any]) -> dict[str, Any]:
        values = attributes.check("security_group", SECURITY_GROUP, body, ctx, creating=False)
        with session_for(self.db_url) as session:
            group = load_group(session, ctx, group_id)
            scope.require_owner(ctx, group.project_id, "update_security_group")
            # counted first: the update takes the row before the checks read
            group.revision_number += 1
            session.flush()
            if "name" in values and values["name"] != group.name:
                if is_default(session, group):
                    raise exc.SecurityGroupCannotUpdateDefault()
                if values["name"] == DEFAULT:
                    raise exc.SecurityGroupDefaultAlreadyExists()
            attributes.apply(group, values)
            session.flush()
            return views.security_group(group)

    def delete_security_group(self, ctx: RequestContext, group_id: str) -> None:
        with session_for(self.db_url) as session:
            group = load_group(session, ctx, group_id)
            scope.require_owner(ctx, group.project_id, "delete_security_group")
            group.revision_number += 1
            session.flush()
            if is_default(session, group) and not ctx.is_admin:
                raise exc.SecurityGroupCannotRemoveDefault()
            users = _ports_using(session, group.id)
            if users:
                raise exc.SecurityGroupInUse(id=group.id, reason=f"is used by port(s) "
                                                                 f"{', '.join(users)}")
            session.delete(group)
