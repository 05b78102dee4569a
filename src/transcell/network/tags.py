"""Tags on every resource with standard attributes (Neutron's standard-attr-tag)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session

from transcell import exception
from transcell.context import RequestContext
from transcell.db.session import session_for
from transcell.network import attributes, scope, security_groups, segments
from transcell.network import exceptions as exc
from transcell.network.routers import load_router
from transcell.network.subnetpools import load_subnetpool

MAX_TAG_LENGTH = 255

_LOADERS: dict[str, Callable[[Session, RequestContext, str], Any]] = {
    "networks": scope.load_network,
    "subnets": scope.load_subnet,
    "ports": scope.load_port,
    "routers": load_router,
    "subnetpools": load_subnetpool,
    "security-groups": security_groups.load_group,
    "segments": segments.load_segment,
}
#: the member name of each tagged collection, as Neutron's rules and errors spell it
MEMBERS = {"networks": "network", "subnets": "subnet", "ports": "port",
           "routers": "router", "subnetpools": "subnetpool",
           "security-groups": "security_group", "segments": "segment"}


def _check_tag(tag: Any) -> str:
    value = attributes.string(MAX_TAG_LENGTH)("tag", tag)
    if not value or "," in value:
        raise exception.Invalid(f"Invalid input for tag. Reason: '{tag}' is not a valid tag.")
    return value


class Tags:
    db_url: str

    def _tagged(self, session: Session, ctx: RequestContext, resource: str,
                resource_id: str, write: bool) -> Any:
        loader = _LOADERS.get(resource)
        if loader is None:
            raise exception.NotFound(f"Tags are not supported on {resource}.")
        row = loader(session, ctx, resource_id)
        if write:
            # a segment belongs to no project: only administrators change it
            scope.require_owner(ctx, getattr(row, "project_id", None) or "",
                                f"update_{MEMBERS[resource]}:tags")
        return row

    def get_tags(self, ctx: RequestContext, resource: str, resource_id: str) -> list[str]:
        with session_for(self.db_url) as session:
            return list(self._tagged(session, ctx, resource, resource_id, False).tags)

    def check_tag(self, ctx: RequestContext, resource: str, resource_id: str,
                  tag: str) -> None:
        if tag not in self.get_tags(ctx, resource, resource_id):
            raise exc.TagNotFound(tag=tag, resource=MEMBERS[resource], resource_id=resource_id)

    def replace_tags(self, ctx: RequestContext, resource: str, resource_id: str,
                     tags: list[str]) -> list[str]:
        if not isinstance(tags, list):
            raise exception.Invalid("Invalid input for tags. Reason: a list is required.")
        wanted = list(dict.fromkeys(_check_tag(tag) for tag in tags))
        with session_for(self.db_url) as session:
            row = self._tagged(session, ctx, resource, resource_id, True)
            row.tags = wanted
            row.revision_number += 1
            return wanted

    def add_tag(self, ctx: RequestContext, resource: str, resource_id: str, tag: str
                ) -> None:
        tag = _check_tag(tag)
        with session_for(self.db_url) as session:
            row = self._tagged(session, ctx, resource, resource_id, True)
            if tag not in row.tags:
                row.tags = [*row.tags, tag]
                row.revision_number += 1

    def remove_tag(self, ctx: RequestContext, resource: str, resource_id: str, tag: str
                   ) -> None:
        with session_for(self.db_url) as session:
            row = self._tagged(session, ctx, resource, resource_id, True)
            if tag not in row.tags:
                raise exc.TagNotFound(tag=tag, resource=MEMBERS[resource],
                                      resource_id=resource_id)
            row.tags = [t for t in row.tags if t != tag]
            row.revision_number += 1
