"""Image tags one at a time, and deactivation: changes Glance makes outside a PATCH.

Each is one conditional manifest update: a tag call checks the tag list it
changes, deactivate and reactivate check the status they leave, so two racing
calls never both act on a state that no longer holds.
"""

from __future__ import annotations

from typing import Any

from transcell import exception
from transcell.context import RequestContext
from transcell.image.service import _MAX_TAGS, ImageService, _now, _string


class TooManyTags(exception.TranscellError):
    code = 413
    msg_fmt = "An image can have at most %(limit)s tags."


def add_tag(service: ImageService, ctx: RequestContext, image_id: str, tag: str
            ) -> dict[str, Any]:
    """Idempotent, as in Glance: a tag the image already has is not an error."""
    _string("tag", tag)

    def apply(record: dict[str, Any]) -> None:
        service._check_modify(ctx, record)
        tags = record.setdefault("tags", [])
        if tag in tags:
            return
        if len(tags) >= _MAX_TAGS:
            raise TooManyTags(limit=_MAX_TAGS)
        tags.append(tag)
        record["updated_at"] = _now()

    return service._update(ctx, image_id, apply)


def delete_tag(service: ImageService, ctx: RequestContext, image_id: str, tag: str
               ) -> dict[str, Any]:
    def apply(record: dict[str, Any]) -> None:
        service._check_modify(ctx, record)
        tags = record.setdefault("tags", [])
        if tag not in tags:
            raise exception.NotFound(f"Tag {tag} not found.")
        tags.remove(tag)
        record["updated_at"] = _now()

    return service._update(ctx, image_id, apply)


def _transition(service: ImageService, ctx: RequestContext, image_id: str, verb: str,
                source: str, target: str) -> dict[str, Any]:
    def apply(record: dict[str, Any]) -> None:
        service._check_modify(ctx, record)
        if record["status"] == target:
            return
        if record["status"] != source:
            raise exception.Forbidden(f"Not allowed to {verb} image in status "
                                      f"'{record['status']}'.")
        record["status"] = target
        record["updated_at"] = _now()

    return service._update(ctx, image_id, apply)


def deactivate(service: ImageService, ctx: RequestContext, image_id: str
               ) -> dict[str, Any]:
    """An active image stops serving its data to anyone but an administrator."""
    return _transition(service, ctx, image_id, "deactivate", "active", "deactivated")


def reactivate(service: ImageService, ctx: RequestContext, image_id: str
               ) -> dict[str, Any]:
    return _transition(service, ctx, image_id, "reactivate", "deactivated", "active")
