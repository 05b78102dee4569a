"""The Image API's one route table."""

from __future__ import annotations

from transcell.api.image import (
    actions,
    chunks,
    image_data,
    images,
    members,
    metadefs,
    schemas,
    versions,
)

ROUTES = {
    "/": {"GET": versions.index},
    "/versions": {"GET": versions.listed},
    "/v2": {"GET": versions.listed},
    "/v2/images": {"GET": images.index, "POST": images.create,
                   "DELETE": images.no_image},
    "/v2/images/{image_id}": {"GET": images.show, "PATCH": images.update,
                              "DELETE": images.delete},
    "/v2/images/{image_id}/file": {"GET": image_data.download, "PUT": image_data.upload},
    "/v2/schemas/image": {"GET": schemas.image},
    "/v2/schemas/images": {"GET": schemas.images},
    "/v2/schemas/member": {"GET": schemas.member},
    "/v2/schemas/members": {"GET": schemas.members},
    **members.ROUTES,
    **actions.ROUTES,
    **chunks.ROUTES,
    **metadefs.ROUTES,
}
