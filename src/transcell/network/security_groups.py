"""Each project's "default" security group, enough for clients that look it up.

Groups are data only: transcell sends no traffic, so there are no rules to
enforce, and the rules shown are the ones Neutron puts in a default group.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from transcell.context import RequestContext
from transcell.db.session import session_for
from transcell.network import exceptions as exc
from transcell.network import scope, views
from transcell.network.models import SecurityGroup

DEFAULT = "default"


def default_group_id(db_url: str, project_id: str) -> str:
    """The project's default group, created the first time anyone needs it.

    Created in a transaction of its own so a concurrent creator's win is
    simply read back.
    """
    query = select(SecurityGroup.id).where(SecurityGroup.project_id == project_id,
                                           SecurityGroup.name == DEFAULT)
    for _attempt in range(2):
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


class SecurityGroups:
    db_url: str

    def list_security_groups(self, ctx: RequestContext,
                             filters: scope.Filters | None = None) -> list[dict[str, Any]]:
        if ctx.project_id:
            default_group_id(self.db_url, ctx.project_id)
        wanted = scope.normalize(filters)
        query = select(SecurityGroup).order_by(SecurityGroup.created_at, SecurityGroup.id)
        if not ctx.is_admin:
            query = query.where(SecurityGroup.project_id == ctx.project_id)
        with session_for(self.db_url) as session:
            bodies = [views.security_group(group) for group in session.scalars(query)]
        return [body for body in bodies if scope.matches(body, wanted)]

    def get_security_group(self, ctx: RequestContext, group_id: str) -> dict[str, Any]:
        if ctx.project_id:
            default_group_id(self.db_url, ctx.project_id)
        with session_for(self.db_url) as session:
            group = session.get(SecurityGroup, group_id)
            if group is None or not scope.owns(ctx, group.project_id):
                raise exc.SecurityGroupNotFound(id=group_id)
            return views.security_group(group)
