"""Tags on networks, subnets and ports (Neutron's standard-attr-tag)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session

from transcell import exception
from transcell.context import RequestContext
from transcell.db.session import session_for
from transcell.network import attributes, scope
from transcell.network import exceptions as exc

MAX_TAG_LENGTH = 255

_LOADERS: dict[str, Callable[[Session, RequestContext, str], Any]] = {
    "networks": scope.load_network,
    "subnets": scope.load_subnet,
    "ports": scope.load_port,
}


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
            scope.require_owner(ctx, row.project_id, f"update_{resource[:-1]}:tags")
        return row

    def get_tags(self, ctx: RequestContext, resource: str, resource_id: str) -> list[str]:
        with session_for(self.db_url) as session:
            return list(self._tagged(session, ctx, resource, resource_id, False).tags)

    def check_tag(self, ctx: RequestContext, resource: str, resource_id: str,
                  tag: str) -> None:
        if tag not in self.get_tags(ctx, resource, resource_id):
            raise exc.TagNotFound(tag=tag, resource=resource[:-1], resource_id=resource_id)

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
                raise exc.TagNotFound(tag=tag, resource=resource[:-1],
                                      resource_id=resource_id)
            row.tags = [t for t in row.tags if t != tag]
            row.revision_number += 1
