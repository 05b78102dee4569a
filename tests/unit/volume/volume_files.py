"""Small sparse volume files for the volume data tests: holes, with data where asked."""

from __future__ import annotations

import hashlib
import os

#: The store chunk size of these tests, small so files of many chunks stay small.
CHUNK = 64 * 1024


def pattern(label: str, length: int = CHUNK) -> bytes:
    """Bytes that differ for every label and repeat for the same one (no zeros to speak of)."""
    return hashlib.shake_256(label.encode()).digest(length)


def sparse_volume(path, chunks: int, data_at: dict[int, bytes]) -> str:
    """A file of ``chunks`` store chunks, a hole everywhere but at the indexes of ``data_at``."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.truncate(chunks * CHUNK)
        for index, content in data_at.items():
            f.seek(index * CHUNK)
            f.write(content)
    return str(path)
