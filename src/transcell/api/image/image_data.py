"""Image data: streamed both ways, never held whole in memory."""

from __future__ import annotations

from typing import IO

import webob

from transcell import exception
from transcell.api.image import access
from transcell.api.image.app import service_of
from transcell.wsgi.app import context_of, empty_response

_OCTET_STREAM = "application/octet-stream"


class ChunkedReader:
    """Decode a chunked request body the WSGI server passed through undecoded.

    The standard library server does not decode ``Transfer-Encoding: chunked``;
    clients streaming from a generator (no known length) send it.
    """

    def __init__(self, raw: IO[bytes]):
        self.raw = raw
        self.left = 0
        self.done = False

    def _next_chunk(self) -> None:
        line = self.raw.readline(1024)
        try:
            self.left = int(line.split(b";")[0].strip(), 16)
        except ValueError:
            raise exception.Invalid("Malformed chunked request body.") from None
        if self.left == 0:
            self.done = True
            while self.raw.readline(1024).strip():
                pass

    def read(self, size: int = -1) -> bytes:
        parts = []
        while not self.done and (size < 0 or size > 0):
            if self.left == 0:
                self._next_chunk()
                continue
            want = self.left if size < 0 else min(size, self.left)
            data = self.raw.read(want)
            if not data:
                raise exception.Invalid("The chunked request body ended early.")
            parts.append(data)
            self.left -= len(data)
            if size > 0:
                size -= len(data)
            if self.left == 0:
                self.raw.readline(16)
        return b"".join(parts)


def _body(req: webob.Request) -> tuple[IO[bytes], int | None]:
    if req.headers.get("Transfer-Encoding", "").lower() == "chunked":
        raw = req.environ["wsgi.input"]
        return (raw if req.environ.get("wsgi.input_terminated") else ChunkedReader(raw)), None
    if req.content_length is None:
        raise exception.Invalid("Image data needs a Content-Length or chunked transfer "
                                "encoding.")
    return req.body_file, req.content_length


def upload(req: webob.Request, image_id: str) -> webob.Response:
    media_type = req.content_type or _OCTET_STREAM
    if media_type != _OCTET_STREAM:
        raise exception.UnsupportedMediaType(
            f"Unsupported Content-Type {media_type!r}; send image data as {_OCTET_STREAM}.")
    access.authorize(req, "upload_image", access.visible(req, image_id))
    stream, size = _body(req)
    service_of(req).upload(context_of(req), image_id, stream, size=size)
    return empty_response(204)


def download(req: webob.Request, image_id: str) -> webob.Response:
    service, ctx = service_of(req), context_of(req)
    record = access.visible(req, image_id)
    access.authorize(req, "download_image", record)
    if record["status"] == "deactivated" and not ctx.is_admin:
        raise exception.Forbidden("The requested image has been deactivated. Image data "
                                  "download is forbidden.")
    if record["status"] not in ("active", "deactivated"):
        return empty_response(204)
    resp = webob.Response(status=200, content_type=_OCTET_STREAM,
                          app_iter=service.download(ctx, image_id))
    resp.content_length = record["size"]
    if record.get("checksum"):
        resp.headers["Content-MD5"] = record["checksum"]
    return resp
