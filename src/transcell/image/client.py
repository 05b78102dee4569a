"""How compute hosts and the conductor reach the image service.

This in-process client forwards to an ``ImageService``. It exists so callers
depend on a narrow interface rather than on the service object: a distributed
deployment can swap in an HTTP implementation with the same methods (hashing
chunks locally, asking the store which are missing, sending only those)
without touching the callers.
"""

from __future__ import annotations

from typing import Any

from transcell.context import RequestContext
from transcell.image.service import ImageService, Progress


class ImageClient:
    def __init__(self, service: ImageService):
        self.service = service

    def get(self, ctx: RequestContext, image_id: str) -> dict[str, Any]:
        return self.service.get(ctx, image_id)

    def list(self, ctx: RequestContext, filters: dict[str, Any] | None = None,
             **kwargs: Any) -> list[dict[str, Any]]:
        return self.service.list(ctx, filters, **kwargs)

    def create(self, ctx: RequestContext, /, **fields: Any) -> dict[str, Any]:
        return self.service.create(ctx, **fields)

    def update(self, ctx: RequestContext, image_id: str, changes: dict[str, Any],
               remove: tuple[str, ...] = ()) -> dict[str, Any]:
        return self.service.update(ctx, image_id, changes, remove)

    def delete(self, ctx: RequestContext, image_id: str) -> None:
        self.service.delete(ctx, image_id)

    def upload_file(self, ctx: RequestContext, image_id: str, path: str,
                    progress: Progress | None = None, hash_algo: str = "sha256",
                    spool: bool = False) -> dict[str, Any]:
        return self.service.upload_file(ctx, image_id, path, progress, hash_algo,
                                        spool=spool)

    def upload_chunks(self, ctx: RequestContext, image_id: str, items: Any, total: int,
                      progress: Progress | None = None, spool: bool = False,
                      taken_from: str | None = None) -> dict[str, Any]:
        return self.service.upload_chunks(ctx, image_id, items, total, progress,
                                          spool=spool, taken_from=taken_from)

    def read_chunks(self, ctx: RequestContext, image_id: str, indexes: Any) -> Any:
        return self.service.read_chunks(ctx, image_id, indexes)

    def sealed_chunk(self, digest: str, length: int) -> str | None:
        """The store's file of a chunk it hashed when it wrote it and that has not
        changed since (``ChunkStore.sealed_path``): this host shares the store's
        filesystem, so it may use the file without reading it through Python."""
        return self.service.store.sealed_path(digest, length)

    def download_to_file(self, ctx: RequestContext, image_id: str, dest_path: str,
                         progress: Progress | None = None, take: bool = False
                         ) -> dict[str, Any]:
        return self.service.download_to_file(ctx, image_id, dest_path, progress, take=take)
