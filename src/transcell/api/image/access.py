"""Who may do what to an image: Glance's policy rules, checked before the service acts.

An image the caller may not even see is reported missing (404), as Glance
does, so another project's private image ids do not leak; one it can see but
may not change is refused (403) in Glance's words.
"""

from __future__ import annotations

from typing import Any

import webob

from transcell import exception, policy
from transcell.api.image.app import service_of
from transcell.policies.image import ImagePolicyNotAuthorized, target
from transcell.wsgi.app import context_of

#: visibility -> the extra rule Glance asks for before an image takes it
VISIBILITY_RULES = {"public": "publicize_image", "community": "communitize_image"}


def authorize(req: webob.Request, action: str, record: dict[str, Any] | None = None,
              owner: str | None = None, member_id: str | None = None) -> None:
    """Refuse unless policy allows ``action`` on ``record`` (None: a new image of ``owner``);
    ``member_id`` is the membership a member call acts on."""
    ctx = context_of(req)
    wanted = target(record, ctx.project_id, member_id)
    if record is None and owner is not None:
        wanted["owner"] = owner
    policy.authorize(ctx, action, wanted, exc=ImagePolicyNotAuthorized)


def authorize_visibility(req: webob.Request, record: dict[str, Any] | None,
                         visibility: Any) -> None:
    """A change to public or community visibility needs its own rule too."""
    rule = VISIBILITY_RULES.get(visibility) if isinstance(visibility, str) else None
    if rule and (record is None or record.get("visibility") != visibility):
        authorize(req, rule, record)


def visible(req: webob.Request, image_id: str) -> dict[str, Any]:
    """The image, if the service shows it to the caller and ``get_image`` allows it."""
    ctx = context_of(req)
    record = service_of(req).get(ctx, image_id)
    if not policy.check(ctx, "get_image", target(record, ctx.project_id)):
        raise exception.ImageNotFound(image_id=image_id)
    return record
