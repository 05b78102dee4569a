"""Image members: sharing one image with other projects, as Glance v2 does.

A membership lives in the image's own manifest (the internal ``members``
field: project id -> status and times), so sharing an image and changing it
are one atomic manifest update, and deleting the image drops its members.

Glance's rules: only images whose visibility is ``shared`` have members; the
owner (or an administrator) adds and removes them; only the member itself
(or an administrator) accepts or rejects; a member sees the image whatever
its status, but lists it by default only once it accepted it (see the list
filter ``member_status``).
"""

from __future__ import annotations

from typing import Any

from transcell import exception
from transcell.context import RequestContext
from transcell.image.service import ImageService, _now

STATUSES = ("pending", "accepted", "rejected")
#: Glance's ``image_member_quota`` default.
MAX_MEMBERS = 128
_MAX_ID = 255


class TooManyMembers(exception.TranscellError):
    code = 413
    msg_fmt = "An image can be shared with at most %(limit)s projects."


def view(image_id: str, member_id: str, entry: dict[str, Any]) -> dict[str, Any]:
    return {"image_id": image_id, "member_id": member_id, "status": entry["status"],
            "created_at": entry["created_at"], "updated_at": entry["updated_at"],
            "schema": "/v2/schemas/member"}


def _require_shared(record: dict[str, Any]) -> None:
    if record["visibility"] != "shared":
        raise exception.Forbidden("Only shared images have members.")


def _owns(ctx: RequestContext, record: dict[str, Any]) -> bool:
    return ctx.is_admin or (record.get("owner") is not None
                            and record["owner"] == ctx.project_id)


def _missing(image_id: str, member_id: str) -> exception.NotFound:
    return exception.NotFound(f"Member {member_id} not found for image {image_id}.")


def _member_id(value: Any) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > _MAX_ID:
        raise exception.Invalid(f"'member' must be a project id of 1 to {_MAX_ID} "
                                f"characters, got {value!r}.")
    return value


def status_of(value: Any) -> str:
    if value not in STATUSES:
        raise exception.Invalid(f"Invalid status {value!r} for an image member: use one of "
                                f"{', '.join(STATUSES)}.")
    return value


def membership(ctx: RequestContext, record: dict[str, Any]) -> dict[str, Any] | None:
    """The caller's own membership of ``record``, if it has one."""
    return record.get("members", {}).get(ctx.project_id) if ctx.project_id else None


def add(service: ImageService, ctx: RequestContext, image_id: str, member_id: Any
        ) -> dict[str, Any]:
    member_id = _member_id(member_id)

    def apply(record: dict[str, Any]) -> None:
        if not _owns(ctx, record):
            raise exception.Forbidden(f"Only the owner of image {image_id} can share it.")
        _require_shared(record)
        members = record.setdefault("members", {})
        if member_id in members:
            raise exception.Conflict(f"Member {member_id} already associated with image "
                                     f"{image_id}.")
        if len(members) >= MAX_MEMBERS:
            raise TooManyMembers(limit=MAX_MEMBERS)
        now = _now()
        members[member_id] = {"status": "pending", "created_at": now, "updated_at": now}

    record = service._update(ctx, image_id, apply)
    return view(image_id, member_id, record["members"][member_id])


def index(service: ImageService, ctx: RequestContext, image_id: str
          ) -> list[dict[str, Any]]:
    """Every member for the owner; a member sees only its own membership."""
    record = service.get(ctx, image_id)
    _require_shared(record)
    members = record.get("members", {})
    if not _owns(ctx, record):
        members = {k: v for k, v in members.items() if k == ctx.project_id}
    ordered = sorted(members.items(), key=lambda item: (item[1]["created_at"], item[0]))
    return [view(image_id, member_id, entry) for member_id, entry in ordered]


def show(service: ImageService, ctx: RequestContext, image_id: str, member_id: str
         ) -> dict[str, Any]:
    record = service.get(ctx, image_id)
    _require_shared(record)
    entry = record.get("members", {}).get(member_id)
    if entry is None or not (_owns(ctx, record) or member_id == ctx.project_id):
        raise _missing(image_id, member_id)
    return view(image_id, member_id, entry)


def update(service: ImageService, ctx: RequestContext, image_id: str, member_id: str,
           status: Any) -> dict[str, Any]:
    status = status_of(status)

    def apply(record: dict[str, Any]) -> None:
        _require_shared(record)
        entry = record.get("members", {}).get(member_id)
        if entry is None:
            raise _missing(image_id, member_id)
        if not ctx.is_admin and member_id != ctx.project_id:
            raise exception.Forbidden(f"Only project {member_id} can accept or reject "
                                      f"image {image_id} shared with it.")
        entry["status"] = status
        entry["updated_at"] = _now()

    record = service._update(ctx, image_id, apply)
    return view(image_id, member_id, record["members"][member_id])


def delete(service: ImageService, ctx: RequestContext, image_id: str, member_id: str
           ) -> None:
    def apply(record: dict[str, Any]) -> None:
        _require_shared(record)
        members = record.get("members", {})
        if member_id not in members:
            raise _missing(image_id, member_id)
        if not _owns(ctx, record):
            raise exception.Forbidden(f"Only the owner of image {image_id} can stop "
                                      "sharing it.")
        del members[member_id]

    service._update(ctx, image_id, apply)
