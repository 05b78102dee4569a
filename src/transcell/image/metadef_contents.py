"""What a metadata definitions namespace holds: objects, properties and tags.

Each is named uniquely within its namespace (the database says so). Reading
one needs only that the caller sees the namespace; removing one from a
protected namespace is refused (403), as Glance refuses it, while adding and
changing stay allowed. Values arrive already validated against the API's
schemas; this module keeps them and shows them in Glance's shapes.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from transcell.context import RequestContext
from transcell.db.session import session_for
from transcell.db.types import utcnow
from transcell.image import metadef_models as m
from transcell.image.metadefs import (
    MetadefDuplicate,
    MetadefNotFound,
    MetadefService,
    addressable,
    stamps,
    without_none,
)

TAG_SORT_KEYS = ("created_at", "name")


def _object_what(namespace: str, name: str) -> str:
    return f"Metadata definition object={name} in namespace={namespace}"


def _property_what(namespace: str, name: str) -> str:
    return f"Metadata definition property={name} in namespace={namespace}"


def _tag_what(namespace: str, name: str) -> str:
    return f"Metadata definition tag={name} in namespace={namespace}"


# -- rows and views ---------------------------------------------------------------
def object_rows(s: Session, namespace_id: int) -> list[m.MetadefObject]:
    return list(s.scalars(select(m.MetadefObject)
                          .where(m.MetadefObject.namespace_id == namespace_id)
                          .order_by(m.MetadefObject.name)))


def property_rows(s: Session, namespace_id: int) -> list[m.MetadefProperty]:
    return list(s.scalars(select(m.MetadefProperty)
                          .where(m.MetadefProperty.namespace_id == namespace_id)
                          .order_by(m.MetadefProperty.name)))


def tag_rows(s: Session, namespace_id: int, sort_key: str = "created_at",
             sort_dir: str = "asc") -> list[m.MetadefTag]:
    column = getattr(m.MetadefTag, sort_key)
    order = (column.desc(), m.MetadefTag.id.desc()) if sort_dir == "desc" else (
        column.asc(), m.MetadefTag.id.asc())
    return list(s.scalars(select(m.MetadefTag)
                          .where(m.MetadefTag.namespace_id == namespace_id).order_by(*order)))


def object_view(namespace: str, row: m.MetadefObject) -> dict[str, Any]:
    view = without_none({"name": row.name, "description": row.description,
                         "required": row.required})
    view["properties"] = dict(row.json_schema or {})
    view.update(stamps(row))
    view["schema"] = "/v2/schemas/metadefs/object"
    view["self"] = f"/v2/metadefs/namespaces/{namespace}/objects/{row.name}"
    return view


def property_body(row: m.MetadefProperty) -> dict[str, Any]:
    """A property's definition as listed under its name (the name is the key)."""
    return dict(row.json_schema or {})


def property_view(row: m.MetadefProperty) -> dict[str, Any]:
    return {"name": row.name, **property_body(row)}


def tag_view(row: m.MetadefTag) -> dict[str, Any]:
    return {"name": row.name, **stamps(row)}


def _one(s: Session, model: Any, namespace_id: int, name: str, what: str) -> Any:
    if not addressable(name):
        raise MetadefNotFound(what=what)
    # populate_existing: a row this session changed by a bulk UPDATE is read afresh
    row = s.scalar(select(model).where(model.namespace_id == namespace_id, model.name == name)
                   .execution_options(populate_existing=True))
    if row is None:
        raise MetadefNotFound(what=what)
    return row


def _taken(s: Session, model: Any, namespace_id: int, name: str) -> bool:
    return s.scalar(select(model.id).where(model.namespace_id == namespace_id,
                                           model.name == name)) is not None


# -- adding, inside a caller's transaction ---------------------------------------------
def add_object(s: Session, namespace: m.MetadefNamespace,
               values: dict[str, Any]) -> m.MetadefObject:
    if _taken(s, m.MetadefObject, namespace.id, values["name"]):
        raise MetadefDuplicate(what=_object_what(namespace.namespace, values["name"]))
    now = utcnow()
    row = m.MetadefObject(namespace_id=namespace.id, name=values["name"],
                          description=values.get("description"),
                          required=values.get("required"),
                          json_schema=values.get("properties") or {},
                          created_at=now, updated_at=now)
    s.add(row)
    s.flush()
    return row


def add_property(s: Session, namespace: m.MetadefNamespace, name: str,
                 body: dict[str, Any]) -> m.MetadefProperty:
    if _taken(s, m.MetadefProperty, namespace.id, name):
        raise MetadefDuplicate(what=_property_what(namespace.namespace, name))
    now = utcnow()
    row = m.MetadefProperty(namespace_id=namespace.id, name=name,
                            json_schema={k: v for k, v in body.items() if k != "name"},
                            created_at=now, updated_at=now)
    s.add(row)
    s.flush()
    return row


def add_tag(s: Session, namespace: m.MetadefNamespace, name: str) -> m.MetadefTag:
    if _taken(s, m.MetadefTag, namespace.id, name):
        raise MetadefDuplicate(what=_tag_what(namespace.namespace, name))
    now = utcnow()
    row = m.MetadefTag(namespace_id=namespace.id, name=name, created_at=now, updated_at=now)
    s.add(row)
    s.flush()
    return row


def _rename_guard(s: Session, model: Any, namespace: m.MetadefNamespace, old: str,
                  new: str, what: str) -> None:
    if new != old and _taken(s, model, namespace.id, new):
        raise MetadefDuplicate(what=what)


def _conditional_update(s: Session, model: Any, row: Any, old_name: str,
                        what: str, **values: Any) -> None:
    """Change ``row`` only if it still has the name it was read with."""
    changed = s.execute(update(model).where(model.id == row.id, model.name == old_name)
                        .values(updated_at=utcnow(), **values)
                        .execution_options(synchronize_session=False)).rowcount
    if changed != 1:
        raise MetadefNotFound(what=what)


def _conditional_delete(s: Session, model: Any, namespace_id: int, name: str,
                        what: str) -> None:
    gone = s.execute(delete(model).where(model.namespace_id == namespace_id,
                                         model.name == name)).rowcount if addressable(
        name) else 0
    if gone != 1:
        raise MetadefNotFound(what=what)


class MetadefContents:
    """Objects, properties and tags of the namespaces ``service`` keeps."""

    def __init__(self, service: MetadefService):
        self.service = service

    def _read(self, ctx: RequestContext, namespace: str):
        return _Reading(self.service, ctx, namespace)

    # -- objects ------------------------------------------------------------------
    def list_objects(self, ctx: RequestContext, namespace: str) -> list[dict[str, Any]]:
        with self._read(ctx, namespace) as (s, ns):
            return [object_view(ns.namespace, row) for row in object_rows(s, ns.id)]

    def show_object(self, ctx: RequestContext, namespace: str, name: str) -> dict[str, Any]:
        with self._read(ctx, namespace) as (s, ns):
            row = _one(s, m.MetadefObject, ns.id, name, _object_what(namespace, name))
            return object_view(ns.namespace, row)

    def create_object(self, ctx: RequestContext, namespace: str,
                      values: dict[str, Any]) -> dict[str, Any]:
        what = _object_what(namespace, values["name"])
        with self.service.session(what) as s:
            ns = self.service.writable_namespace(s, ctx, namespace)
            return object_view(ns.namespace, add_object(s, ns, values))

    def update_object(self, ctx: RequestContext, namespace: str, name: str,
                      values: dict[str, Any]) -> dict[str, Any]:
        new_name = values["name"]
        with self.service.session(_object_what(namespace, new_name)) as s:
            ns = self.service.writable_namespace(s, ctx, namespace)
            row = _one(s, m.MetadefObject, ns.id, name, _object_what(namespace, name))
            _rename_guard(s, m.MetadefObject, ns, name, new_name,
                          _object_what(namespace, new_name))
            _conditional_update(s, m.MetadefObject, row, name, _object_what(namespace, name),
                                name=new_name, description=values.get("description"),
                                required=values.get("required"),
                                json_schema=values.get("properties") or {})
            return object_view(ns.namespace, _one(s, m.MetadefObject, ns.id, new_name,
                                                  _object_what(namespace, new_name)))

    def delete_object(self, ctx: RequestContext, namespace: str, name: str) -> None:
        what = _object_what(namespace, name)
        with session_for(self.service.db_url) as s:
            ns = self.service.writable_namespace(s, ctx, namespace, deleting=what)
            _conditional_delete(s, m.MetadefObject, ns.id, name, what)

    def delete_all(self, ctx: RequestContext, namespace: str, model: Any,
                   what: str) -> None:
        """Every object (or property) of a namespace at once, as Glance's DELETE on the
        collection; a protected namespace refuses it."""
        with session_for(self.service.db_url) as s:
            ns = self.service.writable_namespace(
                s, ctx, namespace, deleting=f"{what} of namespace={namespace}")
            s.execute(delete(model).where(model.namespace_id == ns.id))

    # -- properties ------------------------------------------------------------------
    def list_properties(self, ctx: RequestContext, namespace: str) -> dict[str, Any]:
        with self._read(ctx, namespace) as (s, ns):
            return {row.name: property_body(row) for row in property_rows(s, ns.id)}

    def show_property(self, ctx: RequestContext, namespace: str, name: str) -> dict[str, Any]:
        with self._read(ctx, namespace) as (s, ns):
            return property_view(_one(s, m.MetadefProperty, ns.id, name,
                                      _property_what(namespace, name)))

    def create_property(self, ctx: RequestContext, namespace: str,
                        values: dict[str, Any]) -> dict[str, Any]:
        with self.service.session(_property_what(namespace, values["name"])) as s:
            ns = self.service.writable_namespace(s, ctx, namespace)
            return property_view(add_property(s, ns, values["name"], values))

    def update_property(self, ctx: RequestContext, namespace: str, name: str,
                        values: dict[str, Any]) -> dict[str, Any]:
        new_name = values["name"]
        with self.service.session(_property_what(namespace, new_name)) as s:
            ns = self.service.writable_namespace(s, ctx, namespace)
            row = _one(s, m.MetadefProperty, ns.id, name, _property_what(namespace, name))
            _rename_guard(s, m.MetadefProperty, ns, name, new_name,
                          _property_what(namespace, new_name))
            body = {k: v for k, v in values.items() if k != "name"}
            _conditional_update(s, m.MetadefProperty, row, name,
                                _property_what(namespace, name), name=new_name,
                                json_schema=body)
            return {"name": new_name, **body}

    def delete_property(self, ctx: RequestContext, namespace: str, name: str) -> None:
        what = _property_what(namespace, name)
        with session_for(self.service.db_url) as s:
            ns = self.service.writable_namespace(s, ctx, namespace, deleting=what)
            _conditional_delete(s, m.MetadefProperty, ns.id, name, what)

    # -- tags ---------------------------------------------------------------------------
    def list_tags(self, ctx: RequestContext, namespace: str, *, limit: int | None = None,
                  marker: str | None = None, sort_key: str = "created_at",
                  sort_dir: str = "asc") -> list[dict[str, Any]]:
        with self._read(ctx, namespace) as (s, ns):
            rows = tag_rows(s, ns.id, sort_key, sort_dir)
            if marker is not None:
                names = [row.name for row in rows]
                if marker not in names:
                    raise MetadefNotFound(what=_tag_what(namespace, marker))
                rows = rows[names.index(marker) + 1:]
            if limit is not None:
                rows = rows[:limit]
            return [tag_view(row) for row in rows]

    def show_tag(self, ctx: RequestContext, namespace: str, name: str) -> dict[str, Any]:
        with self._read(ctx, namespace) as (s, ns):
            return tag_view(_one(s, m.MetadefTag, ns.id, name, _tag_what(namespace, name)))

    def create_tag(self, ctx: RequestContext, namespace: str, name: str) -> dict[str, Any]:
        with self.service.session(_tag_what(namespace, name)) as s:
            ns = self.service.writable_namespace(s, ctx, namespace)
            return tag_view(add_tag(s, ns, name))

    def create_tags(self, ctx: RequestContext, namespace: str, names: list[str],
                    append: bool = False) -> list[dict[str, Any]]:
        """Glance's bulk create: the namespace's tags become ``names`` (or gain them,
        ``append``), all or none; a name given twice is a conflict."""
        seen: set[str] = set()
        for name in names:
            if name in seen:
                raise MetadefDuplicate(what=_tag_what(namespace, name))
            seen.add(name)
        with self.service.session(f"A tag of namespace={namespace}") as s:
            ns = self.service.writable_namespace(
                s, ctx, namespace, deleting=None if append else f"Tags of namespace={namespace}")
            if not append:
                s.execute(delete(m.MetadefTag).where(m.MetadefTag.namespace_id == ns.id))
            return [{"name": add_tag(s, ns, name).name} for name in names]

    def update_tag(self, ctx: RequestContext, namespace: str, name: str,
                   new_name: str) -> dict[str, Any]:
        with self.service.session(_tag_what(namespace, new_name)) as s:
            ns = self.service.writable_namespace(s, ctx, namespace)
            row = _one(s, m.MetadefTag, ns.id, name, _tag_what(namespace, name))
            _rename_guard(s, m.MetadefTag, ns, name, new_name, _tag_what(namespace, new_name))
            _conditional_update(s, m.MetadefTag, row, name, _tag_what(namespace, name),
                                name=new_name)
            return tag_view(_one(s, m.MetadefTag, ns.id, new_name,
                                 _tag_what(namespace, new_name)))

    def delete_tag(self, ctx: RequestContext, namespace: str, name: str) -> None:
        what = _tag_what(namespace, name)
        with session_for(self.service.db_url) as s:
            ns = self.service.writable_namespace(s, ctx, namespace, deleting=what)
            _conditional_delete(s, m.MetadefTag, ns.id, name, what)

    def delete_tags(self, ctx: RequestContext, namespace: str) -> None:
        self.delete_all(ctx, namespace, m.MetadefTag, "Tags")


class _Reading:
    """A read-only transaction over a namespace the caller can see."""

    def __init__(self, service: MetadefService, ctx: RequestContext, namespace: str):
        self._cm = session_for(service.db_url)
        self._service, self._ctx, self._namespace = service, ctx, namespace

    def __enter__(self) -> tuple[Session, m.MetadefNamespace]:
        s = self._cm.__enter__()
        try:
            return s, self._service.namespace_row(s, self._ctx, self._namespace)
        except BaseException as exc:
            self._cm.__exit__(type(exc), exc, exc.__traceback__)
            raise

    def __exit__(self, *exc_info) -> bool | None:
        return self._cm.__exit__(*exc_info)
