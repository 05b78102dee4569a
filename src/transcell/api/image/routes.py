"""The Image API's one route table."""

from __future__ import annotations

from transcell.api.image import image_data, images, schemas, versions

ROUTES = {
    "/": {"GET": versions.index},
    "/versions": {"GET": versions.index},
    "/v2": {"GET": versions.index},
    "/v2/images": {"GET": images.index, "POST": images.create},
    "/v2/images/{image_id}": {"GET": images.show, "PATCH": images.update,
                              "DELETE": images.delete},
    "/v2/images/{image_id}/file": {"GET": image_data.download, "PUT": image_data.upload},
    "/v2/schemas/image": {"GET": schemas.image},
    "/v2/schemas/images": {"GET": schemas.images},
}
