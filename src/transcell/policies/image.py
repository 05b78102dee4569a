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


#: Metadata definitions (metadefs): anyone with a role reads public namespaces and their
#: own project's, only an administrator writes, as Glance's defaults.
ADMIN_OR_READER_GET_NAMESPACE = (
    f"{ADMIN} or (role:reader and (project_id:%(project_id)s or 'public':%(visibility)s))")
NAMESPACES = "/v2/metadefs/namespaces"
NAMESPACE = NAMESPACES + "/{namespace}"
OBJECTS = NAMESPACE + "/objects"
OBJECT = OBJECTS + "/{object_name}"
PROPERTIES = NAMESPACE + "/properties"
PROPERTY = PROPERTIES + "/{property_name}"
TAGS = NAMESPACE + "/tags"
MTAG = TAGS + "/{tag_name}"
ASSOCIATIONS = NAMESPACE + "/resource_types"
ASSOCIATION = ASSOCIATIONS + "/{resource_type}"

_RULES += [
    ("get_metadef_namespace", ADMIN_OR_READER_GET_NAMESPACE,
     "Show a metadata definition namespace.", [("GET", NAMESPACE)]),
    ("get_metadef_namespaces", ADMIN_OR_READER, "List metadata definition namespaces.",
     [("GET", NAMESPACES)]),
    ("modify_metadef_namespace", ADMIN, "Change a metadata definition namespace.",
     [("PUT", NAMESPACE)]),
    ("add_metadef_namespace", ADMIN, "Create a metadata definition namespace.",
     [("POST", NAMESPACES)]),
    ("delete_metadef_namespace", ADMIN,
     "Delete a metadata definition namespace, or all objects or properties of one.",
     [("DELETE", NAMESPACE), ("DELETE", OBJECTS), ("DELETE", PROPERTIES)]),
    ("get_metadef_object", ADMIN_OR_READER_GET_NAMESPACE, "Show a metadata definition object.",
     [("GET", OBJECT)]),
    ("get_metadef_objects", ADMIN_OR_READER_GET_NAMESPACE,
     "List a namespace's metadata definition objects.", [("GET", OBJECTS)]),
    ("modify_metadef_object", ADMIN, "Change a metadata definition object.",
     [("PUT", OBJECT)]),
    ("add_metadef_object", ADMIN, "Create a metadata definition object.",
     [("POST", OBJECTS)]),
    ("delete_metadef_object", ADMIN, "Delete a metadata definition object.",
     [("DELETE", OBJECT)]),
    ("list_metadef_resource_types", ADMIN_OR_READER, "List metadata definition resource types.",
     [("GET", "/v2/metadefs/resource_types")]),
    ("get_metadef_resource_type", ADMIN_OR_READER_GET_NAMESPACE,
     "List a namespace's resource type associations.", [("GET", ASSOCIATIONS)]),
    ("add_metadef_resource_type_association", ADMIN,
     "Associate a namespace with a resource type.", [("POST", ASSOCIATIONS)]),
    ("remove_metadef_resource_type_association", ADMIN,
     "Remove a namespace's association with a resource type.", [("DELETE", ASSOCIATION)]),
    ("get_metadef_property", ADMIN_OR_READER_GET_NAMESPACE,
     "Show a metadata definition property.", [("GET", PROPERTY)]),
    ("get_metadef_properties", ADMIN_OR_READER_GET_NAMESPACE,
     "List a namespace's metadata definition properties.", [("GET", PROPERTIES)]),
    ("modify_metadef_property", ADMIN, "Change a metadata definition property.",
     [("PUT", PROPERTY)]),
    ("add_metadef_property", ADMIN, "Create a metadata definition property.",
     [("POST", PROPERTIES)]),
    ("remove_metadef_property", ADMIN, "Delete a metadata definition property.",
     [("DELETE", PROPERTY)]),
    ("get_metadef_tag", ADMIN_OR_READER_GET_NAMESPACE, "Show a metadata definition tag.",
     [("GET", MTAG)]),
    ("get_metadef_tags", ADMIN_OR_READER_GET_NAMESPACE,
     "List a namespace's metadata definition tags.", [("GET", TAGS)]),
    ("modify_metadef_tag", ADMIN, "Rename a metadata definition tag.", [("PUT", MTAG)]),
    ("add_metadef_tag", ADMIN, "Create a metadata definition tag.", [("POST", MTAG)]),
    ("add_metadef_tags", ADMIN, "Create (or replace) a namespace's tags at once.",
     [("POST", TAGS)]),
    ("delete_metadef_tag", ADMIN, "Delete a metadata definition tag.", [("DELETE", MTAG)]),
    ("delete_metadef_tags", ADMIN, "Delete all of a namespace's tags.", [("DELETE", TAGS)]),
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
