"""The image service's database: Glance's metadata definitions catalog (metadefs).

Images themselves live in the chunk store's manifests; the catalog is
relational (namespaces hold objects, properties and tags, and are associated
with resource types), so it has a database of its own, migrated by
``transcell.db.migration.sync(url, "image")``.

Names are unique where Glance makes them unique: a namespace across the
cloud, an object, property or tag within its namespace, a resource type
across the cloud, and one association per namespace and resource type. The
database enforces it, so two racing creates cannot both win.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Boolean, DateTime, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from transcell.db.types import JSONText, utcnow

#: Longest namespace, object, property, tag and resource type name Glance accepts.
NAME_LENGTH = 80


class ImageBase(DeclarativeBase):
    pass


class _Stamped:
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True,
                                                           onupdate=utcnow)


class MetadefNamespace(_Stamped, ImageBase):
    __tablename__ = "metadef_namespaces"
    __table_args__ = (UniqueConstraint("namespace", name="uniq_metadef_namespaces0namespace"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    namespace: Mapped[str] = mapped_column(String(NAME_LENGTH))
    display_name: Mapped[str | None] = mapped_column(String(NAME_LENGTH), nullable=True)
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    visibility: Mapped[str] = mapped_column(String(32), default="private")
    protected: Mapped[bool] = mapped_column(Boolean, default=False)
    owner: Mapped[str] = mapped_column(String(255), index=True)


class MetadefResourceType(_Stamped, ImageBase):
    __tablename__ = "metadef_resource_types"
    __table_args__ = (UniqueConstraint("name", name="uniq_metadef_resource_types0name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(NAME_LENGTH))
    protected: Mapped[bool] = mapped_column(Boolean, default=False)


class MetadefNamespaceResourceType(_Stamped, ImageBase):
    """A namespace's association with a resource type (how its properties apply there)."""

    __tablename__ = "metadef_namespace_resource_types"

    namespace_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("metadef_namespaces.id", ondelete="CASCADE"), primary_key=True)
    resource_type_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("metadef_resource_types.id"), primary_key=True)
    prefix: Mapped[str | None] = mapped_column(String(NAME_LENGTH), nullable=True)
    properties_target: Mapped[str | None] = mapped_column(String(NAME_LENGTH), nullable=True)


class MetadefObject(_Stamped, ImageBase):
    __tablename__ = "metadef_objects"
    __table_args__ = (UniqueConstraint("namespace_id", "name",
                                       name="uniq_metadef_objects0namespace_id0name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    namespace_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("metadef_namespaces.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(NAME_LENGTH))
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    required: Mapped[list[str] | None] = mapped_column(JSONText, nullable=True)
    #: the object's property definitions, by name
    json_schema: Mapped[dict[str, Any]] = mapped_column(JSONText, default=dict)


class MetadefProperty(_Stamped, ImageBase):
    __tablename__ = "metadef_properties"
    __table_args__ = (UniqueConstraint("namespace_id", "name",
                                       name="uniq_metadef_properties0namespace_id0name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    namespace_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("metadef_namespaces.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(NAME_LENGTH))
    #: the property's definition (title, type, enum, default, ...), without its name
    json_schema: Mapped[dict[str, Any]] = mapped_column(JSONText, default=dict)


class MetadefTag(_Stamped, ImageBase):
    __tablename__ = "metadef_tags"
    __table_args__ = (UniqueConstraint("namespace_id", "name",
                                       name="uniq_metadef_tags0namespace_id0name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    namespace_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("metadef_namespaces.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(NAME_LENGTH))
