"""Image API (Glance v2) policy defaults, under Glance's own rule names.

Glance's secure-RBAC defaults: readers see their project's images (and public,
community and shared ones), members create and change their project's images,
only an administrator publicizes one. Glance guards downloads with the member
role, not the reader role: a reader may see that an image exists but not take
its bytes. Rule names match Glance's so an operator's Glance policy file
overrides carry over.
"""

from __future__ import annotations

from oslo_policy import policy as oslo_policy

from transcell import exception

ADMIN = "rule:context_is_admin"
PROJECT_MEMBER = "role:member and project_id:%(project_id)s"
PROJECT_READER = "role:reader and project_id:%(project_id)s"
_VISIBLE = ("project_id:%(project_id)s or project_id:%(member_id)s or "
            "'community':%(visibility)s or 'public':%(visibility)s or "
            "'shared':%(visibility)s")
ADMIN_OR_MEMBER = f"{ADMIN} or ({PROJECT_MEMBER})"
ADMIN_OR_READER = f"{ADMIN} or ({PROJECT_READER})"
ADMIN_OR_READER_GET_IMAGE = f"{ADMIN} or (role:reader and ({_VISIBLE}))"
ADMIN_OR_MEMBER_DOWNLOAD = f"{ADMIN} or (role:member and ({_VISIBLE}))"
ADMIN_OR_MEMBER_CREATE = f"{ADMIN} or ({PROJECT_MEMBER} and project_id:%(owner)s)"
ADMIN_OR_SHARED_MEMBER = f"{ADMIN} or (role:member and project_id:%(member_id)s)"
#: the chunk protocol moves any project's disks: a host or conductor, never a person
ADMIN_OR_SERVICE = f"{ADMIN} or role:service"
ADMIN_OR_READER_OR_SHARED_MEMBER = (
    f"{ADMIN} or (role:reader and (project_id:%(project_id)s or "
    "project_id:%(member_id)s))")

IMAGES = "/v2/images"
IMAGE = "/v2/images/{image_id}"
FILE = IMAGE + "/file"
MEMBERS = IMAGE + "/members"
MEMBER = MEMBERS + "/{member_id}"
TAG = IMAGE + "/tags/{tag_value}"
CHUNKS = IMAGE + "/chunks"
CHUNK_UPLOAD = IMAGE + "/chunk-upload"

#: (name, check string, description, [(method, path), ...])
_RULES: list[tuple[str, str, str, list[tuple[str, str]]]] = [
    ("get_images", ADMIN_OR_READER, "List images.", [("GET", IMAGES)]),
    ("get_image", ADMIN_OR_READER_GET_IMAGE, "Show an image.", [("GET", IMAGE)]),
    ("add_image", ADMIN_OR_MEMBER_CREATE, "Create an image (owned by the caller's project).",
     [("POST", IMAGES)]),
    ("modify_image", ADMIN_OR_MEMBER, "Change an image's properties and tags.",
     [("PATCH", IMAGE), ("PUT", TAG), ("DELETE", TAG)]),
    ("publicize_image", ADMIN, "Make an image public.", [("PATCH", IMAGE), ("POST", IMAGES)]),
    ("communitize_image", ADMIN_OR_MEMBER, "Make an image a community image.",
     [("PATCH", IMAGE), ("POST", IMAGES)]),
    ("delete_image", ADMIN_OR_MEMBER, "Delete an image.", [("DELETE", IMAGE)]),
    ("upload_image", ADMIN_OR_MEMBER, "Upload an image's data.", [("PUT", FILE)]),
    ("download_image", ADMIN_OR_MEMBER_DOWNLOAD, "Download an image's data.",
     [("GET", FILE)]),
    ("deactivate", ADMIN_OR_MEMBER, "Deactivate an image.",
     [("POST", IMAGE + "/actions/deactivate")]),
    ("reactivate", ADMIN_OR_MEMBER, "Reactivate an image.",
     [("POST", IMAGE + "/actions/reactivate")]),
    ("add_member", ADMIN_OR_MEMBER, "Share an image with another project.",
     [("POST", MEMBERS)]),
    ("get_members", ADMIN_OR_READER_OR_SHARED_MEMBER, "List an image's members.",
     [("GET", MEMBERS)]),
    ("get_member", ADMIN_OR_READER_OR_SHARED_MEMBER, "Show an image member.",
     [("GET", MEMBER)]),
    ("modify_member", ADMIN_OR_SHARED_MEMBER,
     "Accept or reject an image shared with the caller's project.", [("PUT", MEMBER)]),
    ("delete_member", ADMIN_OR_MEMBER, "Stop sharing an image with a project.",
     [("DELETE", MEMBER)]),
    ("get_image_location", ADMIN_OR_READER, "Show an image's locations.",
     [("GET", IMAGE)]),
    ("set_image_location", ADMIN_OR_MEMBER, "Set an image's locations.",
     [("PATCH", IMAGE)]),
    ("delete_image_location", ADMIN, "Remove an image's locations.", [("PATCH", IMAGE)]),
    ("copy_image", ADMIN, "Copy an image to other stores.",
     [("POST", IMAGE + "/import")]),
    ("get_image_chunks", ADMIN_OR_SERVICE,
     "Read an image's chunk list and chunks (transcell; compute hosts rebuilding disks).",
     [("GET", CHUNKS), ("GET", CHUNKS + "/{chunk}")]),
    ("upload_image_chunks", ADMIN_OR_SERVICE,
     "Upload an image chunk by chunk, sending only what the store lacks (transcell; "
     "compute hosts sending disks).",
     [("POST", CHUNK_UPLOAD), ("POST", CHUNK_UPLOAD + "/missing"),
      ("PUT", CHUNKS + "/{chunk}"), ("POST", CHUNK_UPLOAD + "/commit"),
      ("DELETE", CHUNK_UPLOAD)]),
]


def list_rules() -> list[oslo_policy.RuleDefault]:
    return [oslo_policy.DocumentedRuleDefault(
        name, check, description,
        [{"method": method, "path": path} for method, path in operations],
        scope_types=["project"]) for name, check, description, operations in _RULES]


class ImagePolicyNotAuthorized(exception.Forbidden):
    """Glance's wording for a refusal by policy."""

    msg_fmt = "You are not authorized to complete %(action)s action."


def target(record: dict | None, project_id: str | None,
           member_id: str | None = None) -> dict[str, object]:
    """The attributes Glance's check strings read, for ``record`` (None: a new image).

    ``member_id`` names the caller's project when the image is shared with it
    (any member status), unless a member call names the membership it acts on.
    """
    if record is None:
        return {"project_id": project_id, "owner": project_id, "visibility": "private",
                "member_id": ""}
    if member_id is None:
        shared_with = record.get("members") or {}
        member_id = project_id if project_id and project_id in shared_with else ""
    return {"project_id": record.get("owner") or "", "owner": record.get("owner") or "",
            "visibility": record.get("visibility") or "private", "member_id": member_id}
