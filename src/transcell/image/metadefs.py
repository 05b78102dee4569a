"""The metadata definitions catalog: namespaces and resource types (Glance's metadefs).

A namespace groups definitions (objects, properties, tags; see
``metadef_contents``) that describe metadata other services accept, and is
associated with the resource types it applies to. Who sees what follows
Glance: a public namespace is seen by everyone, a private one by its owner's
project and by administrators; any other caller is told it does not exist,
so private names do not leak. Policy (who may write) is the API's business.

Every change is one transaction whose writes name what they expect (the row
id read in the same transaction, ``protected`` false for a delete), and
uniqueness is the database's, so a racing duplicate is reported as a conflict
(409) instead of being written twice.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from transcell import exception
from transcell.context import RequestContext
from transcell.db.session import session_for
from transcell.db.types import isotime, utcnow
from transcell.image import metadef_models as m

VISIBILITIES = ("public", "private")
SORT_KEYS = ("created_at", "updated_at", "namespace")
DEFAULT_LIMIT = 25
MAX_LIMIT = 1000


class MetadefNotFound(exception.NotFound):
    msg_fmt = "%(what)s not found."


class MetadefDuplicate(exception.Conflict):
    msg_fmt = "%(what)s already exists."


class MetadefProtected(exception.Forbidden):
    msg_fmt = "%(what)s is protected and cannot be deleted."


def namespace_missing(name: str) -> MetadefNotFound:
    return MetadefNotFound(what=f"Metadata definition namespace={name}")


def stamps(row: Any) -> dict[str, str | None]:
    """Glance shows ``updated_at`` equal to ``created_at`` until the first change."""
    return {"created_at": isotime(row.created_at),
            "updated_at": isotime(row.updated_at or row.created_at)}


def without_none(values: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in values.items() if value is not None}


def addressable(name: object) -> bool:
    """Whether ``name`` could name anything stored: a string of at most the column's
    length with no NUL (which PostgreSQL refuses in a query). Anything else is
    reported missing without asking the database."""
    return isinstance(name, str) and 0 < len(name) <= m.NAME_LENGTH and "\x00" not in name


def may_see(ctx: RequestContext, row: m.MetadefNamespace) -> bool:
    return ctx.is_admin or row.visibility == "public" or (
        bool(ctx.project_id) and row.owner == ctx.project_id)


class MetadefService:
    """The catalog over the image service's database (``[image] database_connection``)."""

    def __init__(self, db_url: str):
        self.db_url = db_url

    @contextlib.contextmanager
    def session(self, what: str | None = None) -> Iterator[Session]:
        """One transaction; a uniqueness violation in it is ``what`` already existing."""
        try:
            with session_for(self.db_url) as s:
                yield s
        except IntegrityError:
            raise MetadefDuplicate(what=what or "The metadata definition") from None

    # -- namespaces -------------------------------------------------------------
    def namespace_row(self, s: Session, ctx: RequestContext, name: str,
                      for_update: bool = False) -> m.MetadefNamespace:
        """The namespace ``name`` if the caller may see it, else 404."""
        if not addressable(name):
            raise namespace_missing(name)
        query = select(m.MetadefNamespace).where(m.MetadefNamespace.namespace == name)
        if for_update:
            query = query.with_for_update()
        row = s.scalar(query)
        if row is None or not may_see(ctx, row):
            raise namespace_missing(name)
        return row

    def namespace_target(self, ctx: RequestContext, name: str) -> dict[str, Any]:
        """What policy reads of a namespace the caller can see (404 if it cannot)."""
        with session_for(self.db_url) as s:
            row = self.namespace_row(s, ctx, name)
            return {"project_id": row.owner, "owner": row.owner,
                    "visibility": row.visibility, "protected": row.protected}

    def _associations(self, s: Session, namespace_ids: list[int]
                      ) -> dict[int, list[dict[str, Any]]]:
        found: dict[int, list[dict[str, Any]]] = {}
        if not namespace_ids:
            return found
        rows = s.execute(
            select(m.MetadefNamespaceResourceType, m.MetadefResourceType.name)
            .join(m.MetadefResourceType,
                  m.MetadefResourceType.id == m.MetadefNamespaceResourceType.resource_type_id)
            .where(m.MetadefNamespaceResourceType.namespace_id.in_(namespace_ids))
            .order_by(m.MetadefResourceType.name)).all()
        for assoc, name in rows:
            found.setdefault(assoc.namespace_id, []).append(association_view(assoc, name))
        return found

    @staticmethod
    def _namespace_view(row: m.MetadefNamespace,
                        associations: list[dict[str, Any]] | None) -> dict[str, Any]:
        view = without_none({"namespace": row.namespace, "display_name": row.display_name,
                             "description": row.description, "visibility": row.visibility,
                             "protected": bool(row.protected), "owner": row.owner})
        view.update(stamps(row))
        if associations:
            view["resource_type_associations"] = associations
        return view

    def list_namespaces(self, ctx: RequestContext, *, limit: int = DEFAULT_LIMIT,
                        marker: str | None = None, sort_key: str = "created_at",
                        sort_dir: str = "desc", visibility: str | None = None,
                        resource_types: list[str] | None = None
                        ) -> tuple[list[dict[str, Any]], bool]:
        """A page of the namespaces the caller sees, and whether more follow."""
        ns = m.MetadefNamespace
        query = select(ns)
        if not ctx.is_admin:
            query = query.where(or_(ns.visibility == "public", ns.owner == (ctx.project_id
                                                                            or "")))
        if visibility is not None:
            query = query.where(ns.visibility == visibility)
        if resource_types:
            resource_types = [t for t in resource_types if addressable(t)]
            if not resource_types:
                return [], False  # no resource type has any of these names
            assoc, rtype = m.MetadefNamespaceResourceType, m.MetadefResourceType
            query = query.where(ns.id.in_(
                select(assoc.namespace_id).join(rtype, rtype.id == assoc.resource_type_id)
                .where(rtype.name.in_(resource_types))))
        column = getattr(ns, sort_key)
        with session_for(self.db_url) as s:
            if marker is not None:
                anchor = s.scalar(select(ns).where(ns.namespace == marker)) if addressable(
                    marker) else None
                if anchor is None or not may_see(ctx, anchor):
                    raise namespace_missing(marker)
                value = getattr(anchor, sort_key)
                after = column < value if sort_dir == "desc" else column > value
                tie = ns.id < anchor.id if sort_dir == "desc" else ns.id > anchor.id
                query = query.where(or_(after, (column == value) & tie))
            order = (column.desc(), ns.id.desc()) if sort_dir == "desc" else (
                column.asc(), ns.id.asc())
            rows = list(s.scalars(query.order_by(*order).limit(limit + 1)))
            more = len(rows) > limit
            rows = rows[:limit]
            assocs = self._associations(s, [row.id for row in rows])
            return [self._namespace_view(row, assocs.get(row.id)) for row in rows], more

    def show_namespace(self, ctx: RequestContext, name: str) -> dict[str, Any]:
        """A namespace with everything it defines, as Glance's detail view."""
        from transcell.image import metadef_contents as contents
        with session_for(self.db_url) as s:
            row = self.namespace_row(s, ctx, name)
            view = self._namespace_view(row, self._associations(s, [row.id]).get(row.id))
            properties = contents.property_rows(s, row.id)
            if properties:
                view["properties"] = {p.name: contents.property_body(p) for p in properties}
            objects = contents.object_rows(s, row.id)
            if objects:
                view["objects"] = [contents.object_view(row.namespace, o) for o in objects]
            tags = contents.tag_rows(s, row.id)
            if tags:
                view["tags"] = [{"name": t.name} for t in tags]
            return view

    def create_namespace(self, ctx: RequestContext, values: dict[str, Any],
                         associations: list[dict[str, Any]] = (),
                         properties: dict[str, dict[str, Any]] | None = None,
                         objects: list[dict[str, Any]] = (),
                         tags: list[str] = ()) -> dict[str, Any]:
        """A namespace and the definitions given with it, all or nothing."""
        from transcell.image import metadef_contents as contents
        name = values["namespace"]
        with self.session(f"Metadata definition namespace={name}") as s:
            if s.scalar(select(m.MetadefNamespace.id)
                        .where(m.MetadefNamespace.namespace == name)) is not None:
                raise MetadefDuplicate(what=f"Metadata definition namespace={name}")
            now = utcnow()
            row = m.MetadefNamespace(
                namespace=name, display_name=values.get("display_name"),
                description=values.get("description"),
                visibility=values.get("visibility") or "private",
                protected=bool(values.get("protected")),
                owner=values.get("owner") or ctx.project_id or "", created_at=now,
                updated_at=now)
            s.add(row)
            s.flush()
            for assoc in associations:
                self._associate(s, row, assoc)
            for prop_name, body in (properties or {}).items():
                contents.add_property(s, row, prop_name, body)
            for obj in objects:
                contents.add_object(s, row, obj)
            for tag in tags:
                contents.add_tag(s, row, tag)
            s.flush()
        return self.show_namespace(RequestContext.admin(), name)

    def update_namespace(self, ctx: RequestContext, name: str,
                         values: dict[str, Any]) -> dict[str, Any]:
        """Glance's PUT: every field replaced, those not given back to their defaults."""
        new_name = values["namespace"]
        with self.session(f"Metadata definition namespace={new_name}") as s:
            row = self.namespace_row(s, ctx, name, for_update=True)
            if new_name != name and s.scalar(
                    select(m.MetadefNamespace.id)
                    .where(m.MetadefNamespace.namespace == new_name)) is not None:
                raise MetadefDuplicate(what=f"Metadata definition namespace={new_name}")
            changed = s.execute(
                update(m.MetadefNamespace)
                .where(m.MetadefNamespace.id == row.id,
                       m.MetadefNamespace.namespace == name)
                .values(namespace=new_name, display_name=values.get("display_name"),
                        description=values.get("description"),
                        visibility=values.get("visibility") or "private",
                        protected=bool(values.get("protected")),
                        owner=values.get("owner") or ctx.project_id or row.owner,
                        updated_at=utcnow())
                .execution_options(synchronize_session=False)).rowcount
            if changed != 1:
                raise namespace_missing(name)
        return self.show_namespace(RequestContext.admin(), new_name)

    def delete_namespace(self, ctx: RequestContext, name: str) -> None:
        """The namespace and all it holds; refused (403) while it is protected."""
        with session_for(self.db_url) as s:
            row = self.namespace_row(s, ctx, name, for_update=True)
            if row.protected:
                raise MetadefProtected(what=f"Metadata definition namespace={name}")
            for model in (m.MetadefObject, m.MetadefProperty, m.MetadefTag,
                          m.MetadefNamespaceResourceType):
                s.execute(delete(model).where(model.namespace_id == row.id))
            gone = s.execute(delete(m.MetadefNamespace)
                             .where(m.MetadefNamespace.id == row.id,
                                    m.MetadefNamespace.protected.is_(False))).rowcount
            if gone != 1:
                raise MetadefProtected(what=f"Metadata definition namespace={name}")

    def writable_namespace(self, s: Session, ctx: RequestContext, name: str,
                           deleting: str | None = None) -> m.MetadefNamespace:
        """The namespace a change goes into, locked; ``deleting`` names what a delete
        would remove, which a protected namespace refuses (403)."""
        row = self.namespace_row(s, ctx, name, for_update=True)
        if deleting is not None and row.protected:
            raise MetadefProtected(what=deleting)
        return row

    # -- resource types ------------------------------------------------------------
    def list_resource_types(self) -> list[dict[str, Any]]:
        with session_for(self.db_url) as s:
            rows = s.scalars(select(m.MetadefResourceType)
                             .order_by(m.MetadefResourceType.name))
            return [{"name": row.name, **stamps(row)} for row in rows]

    def list_associations(self, ctx: RequestContext, name: str) -> list[dict[str, Any]]:
        with session_for(self.db_url) as s:
            row = self.namespace_row(s, ctx, name)
            return self._associations(s, [row.id]).get(row.id, [])

    def _associate(self, s: Session, namespace: m.MetadefNamespace,
                   values: dict[str, Any]) -> dict[str, Any]:
        """Associate ``namespace`` with a resource type, which is created if it is new
        (as Glance does: resource types are named by the services that consume them)."""
        type_name = values["name"]
        rtype = s.scalar(select(m.MetadefResourceType)
                         .where(m.MetadefResourceType.name == type_name))
        if rtype is None:
            rtype = m.MetadefResourceType(name=type_name, protected=False, created_at=utcnow())
            s.add(rtype)
            s.flush()
        exists = s.scalar(select(func.count()).select_from(m.MetadefNamespaceResourceType)
                          .where(m.MetadefNamespaceResourceType.namespace_id == namespace.id,
                                 m.MetadefNamespaceResourceType.resource_type_id == rtype.id))
        if exists:
            raise MetadefDuplicate(what=f"Resource type association {type_name} of "
                                        f"namespace={namespace.namespace}")
        assoc = m.MetadefNamespaceResourceType(
            namespace_id=namespace.id, resource_type_id=rtype.id,
            prefix=values.get("prefix"), properties_target=values.get("properties_target"),
            created_at=utcnow())
        s.add(assoc)
        s.flush()
        return association_view(assoc, type_name)

    def associate(self, ctx: RequestContext, name: str,
                  values: dict[str, Any]) -> dict[str, Any]:
        what = f"Resource type association {values['name']} of namespace={name}"
        with self.session(what) as s:
            return self._associate(s, self.writable_namespace(s, ctx, name), values)

    def dissociate(self, ctx: RequestContext, name: str, type_name: str) -> None:
        what = f"Resource type association {type_name} of namespace={name}"
        with session_for(self.db_url) as s:
            row = self.writable_namespace(s, ctx, name, deleting=what)
            rtype_id = s.scalar(select(m.MetadefResourceType.id)
                                .where(m.MetadefResourceType.name == type_name)
                                ) if addressable(type_name) else None
            gone = 0 if rtype_id is None else s.execute(
                delete(m.MetadefNamespaceResourceType)
                .where(m.MetadefNamespaceResourceType.namespace_id == row.id,
                       m.MetadefNamespaceResourceType.resource_type_id == rtype_id)).rowcount
            if gone != 1:
                raise MetadefNotFound(what=what)


def association_view(assoc: m.MetadefNamespaceResourceType, name: str) -> dict[str, Any]:
    return {"name": name, **without_none({"prefix": assoc.prefix,
                                          "properties_target": assoc.properties_target}),
            **stamps(assoc)}
