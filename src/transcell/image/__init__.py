"""The global image service: Glance v2 records over a content-addressed chunk store.

It is the only path bytes take between cells; see ``store`` for the storage
rules and ``service`` for the verified upload and download paths.
"""

from __future__ import annotations

from transcell import conf
from transcell.image.client import ImageClient
from transcell.image.service import ImageService
from transcell.image.store import ChunkStore

__all__ = ["ChunkStore", "ImageClient", "ImageService", "from_config"]


def from_config() -> ImageService:
    """The image service over the store the configuration names."""
    return ImageService(ChunkStore(conf.image_store_dir(), conf.CONF.image.chunk_size))
