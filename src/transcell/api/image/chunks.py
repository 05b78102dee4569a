"""The chunk protocol over HTTP: how a compute host moves a disk through the image service.

These routes are a transcell extension of the Image API (Glance has no
equivalent). They let a host in one cell send a disk to the store and a host
in another cell read it back, sending only chunks the store lacks and
checking every chunk by its sha256, with the image service's URL as the only
path between them. Only an administrator or the ``service`` role may use
them (``get_image_chunks``, ``upload_image_chunks``); the image service's
own owner and visibility checks apply on top. Paths are under the Image API
root (``/image`` in the embedded cloud)::

    GET    /v2/images/{id}/chunks                 the record with its chunk list
                                                  (``chunk_size``, ``chunks``)
    GET    /v2/images/{id}/chunks/{n | digest}    one chunk's bytes, by index or
                                                  sha256; ``X-Image-Chunk-Sha256``
                                                  names it
    POST   /v2/images/{id}/chunk-upload           begin: queued -> saving; returns
                                                  the record (its ``chunk_size``);
                                                  optional body {"spool": bool,
                                                  "taken_from": image id}
    POST   /v2/images/{id}/chunk-upload/missing   {"digests": [...]} ->
                                                  {"missing": [...]}, at most 4096
    PUT    /v2/images/{id}/chunks/{n}             one chunk (octet-stream, at most
                                                  ``chunk_size`` bytes) with its
                                                  sha256 in ``X-Image-Chunk-Sha256``;
                                                  400 and nothing stored unless the
                                                  bytes match; 201 stored, 200 known
    POST   /v2/images/{id}/chunk-upload/commit    {"size", "chunks", "os_hash_algo",
                                                  "os_hash_value"?, "checksum"?} ->
                                                  the active record
    DELETE /v2/images/{id}/chunk-upload           abort: queued again
    POST   /v2/images/{id}/spool/lend             a move's spool offered to a target
                                                  on this filesystem: {"path",
                                                  "signature", "indexes"}; 409 when
                                                  there is none to offer
    POST   /v2/images/{id}/spool/confirm          the target renamed it away: the
                                                  record, naming those chunks taken
    POST   /v2/images/{id}/spool/return           the target could not take it: 204

Chunks of zeros are never sent: the commit names them and the store makes
them. A commit naming a chunk the store lacks answers 409 with the digests
in ``missing_chunks``; any failed commit ends the upload (image queued
again). Errors use Glance's envelope; the two a client must tell apart from
others also carry ``transcell_error`` (``ChunkMissing``, ``ChecksumMismatch``).

Chunk bodies and commit bodies (a chunk list of a large disk passes 1 MiB)
are exempt from the JSON body limit but bounded by their own; see
:func:`body_limits`, which every process serving this API puts in front of it.
"""

from __future__ import annotations

from typing import Any

import webob

from transcell import exception
from transcell.api.image import access
from transcell.api.image.app import glance_error, service_of
from transcell.image.chunked import DIGEST_HEADER, uploads_for
from transcell.image.store import ChunkMissing
from transcell.wsgi.app import context_of, json_response, read_json

READ_RULE = "get_image_chunks"
WRITE_RULE = "upload_image_chunks"
#: A commit body: ~70 bytes per chunk, so this names over 450k chunks (1.8 TiB
#: in 4 MiB chunks) and still refuses an unbounded body.
COMMIT_LIMIT = 32 * 1024 * 1024
_OCTET_STREAM = "application/octet-stream"
_ID = r"[^/]+"


def body_limits(prefix: str = "/image", chunk_size: int | None = None
                ) -> list[tuple[str, str, int | None]]:
    """(method, path regex, limit) for Image API routes not held to the JSON limit.

    ``prefix`` is where the Image API is mounted; ``None`` as a limit leaves
    the body to the server's ``max_upload_size`` (whole image uploads).
    """
    if chunk_size is None:
        from transcell.conf import CONF
        chunk_size = CONF.image.chunk_size
    images = f"{prefix}/v2/images/{_ID}"
    return [("PUT", f"{images}/file", None),
            ("PUT", rf"{images}/chunks/\d+", chunk_size),
            ("POST", f"{images}/chunk-upload/commit", COMMIT_LIMIT)]


def _error(code: int, message: str, **extra: Any) -> webob.Response:
    body = glance_error(code, message)
    body.update(extra)
    return json_response(body, status=code)


def _allowed(req: webob.Request, rule: str) -> None:
    # checked before the image is looked up: a refused caller learns nothing
    access.authorize(req, rule)


def manifest(req: webob.Request, image_id: str) -> webob.Response:
    _allowed(req, READ_RULE)
    return json_response(uploads_for(service_of(req)).manifest(context_of(req), image_id))


def get_chunk(req: webob.Request, image_id: str, chunk: str) -> webob.Response:
    _allowed(req, READ_RULE)
    try:
        digest, data = uploads_for(service_of(req)).chunk(context_of(req), image_id, chunk)
    except exception.ChecksumMismatch as exc:
        return _error(500, exc.message, transcell_error="ChecksumMismatch")
    except ChunkMissing as exc:
        return _error(500, exc.message, transcell_error="ChunkMissing",
                      missing_chunks=[exc.kwargs.get("digest")])
    resp = webob.Response(status=200, content_type=_OCTET_STREAM, body=data)
    resp.headers[DIGEST_HEADER] = digest
    return resp


def put_chunk(req: webob.Request, image_id: str, chunk: str) -> webob.Response:
    _allowed(req, WRITE_RULE)
    if not chunk.isdigit():
        raise exception.Invalid(f"Chunks are put by index (0, 1, ...), not {chunk!r}.")
    media_type = req.content_type or _OCTET_STREAM
    if media_type != _OCTET_STREAM:
        raise exception.UnsupportedMediaType(
            f"Unsupported Content-Type {media_type!r}; send a chunk as {_OCTET_STREAM}.")
    digest = req.headers.get(DIGEST_HEADER)
    if not digest:
        raise exception.Invalid(f"A chunk needs its sha256 in the {DIGEST_HEADER} header.")
    uploads = uploads_for(service_of(req))
    limit = uploads.store.chunk_size
    if req.content_length is None:
        raise exception.Invalid("A chunk needs a Content-Length.")
    if req.content_length > limit:
        return _error(413, f"A chunk holds at most {limit} bytes; this one declares "
                      f"{req.content_length}.")
    data = req.body_file.read(req.content_length)
    stored = uploads.put(context_of(req), image_id, int(chunk), digest, data)
    return json_response({"digest": digest, "stored": stored}, status=201 if stored else 200)


def begin(req: webob.Request, image_id: str) -> webob.Response:
    _allowed(req, WRITE_RULE)
    body = read_json(req, required=False) or {}
    if not isinstance(body, dict):
        raise exception.Invalid("The begin body, if any, must be a JSON object.")
    spool, taken_from = body.get("spool", False), body.get("taken_from")
    if not isinstance(spool, bool):
        raise exception.Invalid(f"'spool' must be true or false, got {spool!r}.")
    if taken_from is not None and not isinstance(taken_from, str):
        raise exception.Invalid(f"'taken_from' must be an image id, got {taken_from!r}.")
    return json_response(uploads_for(service_of(req)).begin(
        context_of(req), image_id, spool=spool, taken_from=taken_from))


def lend_spool(req: webob.Request, image_id: str) -> webob.Response:
    _allowed(req, WRITE_RULE)
    offered = uploads_for(service_of(req)).lend_spool(context_of(req), image_id)
    if offered is None:
        return _error(409, f"Image {image_id} has no spool to offer; read its chunks.")
    return json_response(offered)


def confirm_spool(req: webob.Request, image_id: str) -> webob.Response:
    _allowed(req, WRITE_RULE)
    return json_response(uploads_for(service_of(req)).confirm_spool(context_of(req),
                                                                      image_id))


def return_spool(req: webob.Request, image_id: str) -> webob.Response:
    _allowed(req, WRITE_RULE)
    uploads_for(service_of(req)).return_spool(context_of(req), image_id)
    return webob.Response(status=204, content_type=None, body=b"")


def missing(req: webob.Request, image_id: str) -> webob.Response:
    _allowed(req, WRITE_RULE)
    body = read_json(req)
    digests = body.get("digests") if isinstance(body, dict) else None
    if not isinstance(digests, list):
        raise exception.Invalid('The body must be {"digests": [sha256 hex, ...]}.')
    lacking = uploads_for(service_of(req)).missing(context_of(req), image_id, digests)
    return json_response({"missing": lacking})


def commit(req: webob.Request, image_id: str) -> webob.Response:
    _allowed(req, WRITE_RULE)
    body = read_json(req)
    if not isinstance(body, dict):
        raise exception.Invalid("The commit body must be a JSON object.")
    try:
        record = uploads_for(service_of(req)).commit(
            context_of(req), image_id, body.get("size"), body.get("chunks"),
            body.get("os_hash_algo", "sha256-chunks"), body.get("os_hash_value"),
            body.get("checksum"))
    except ChunkMissing as exc:
        return _error(409, f"{exc.message} The upload was ended; begin it again.",
                      transcell_error="ChunkMissing",
                      missing_chunks=[exc.kwargs.get("digest")])
    except exception.ChecksumMismatch as exc:
        return _error(500, exc.message, transcell_error="ChecksumMismatch")
    return json_response(record)


def abort(req: webob.Request, image_id: str) -> webob.Response:
    _allowed(req, WRITE_RULE)
    uploads_for(service_of(req)).abort(context_of(req), image_id)
    return webob.Response(status=204, content_type=None, body=b"")


ROUTES = {
    "/v2/images/{image_id}/chunks": {"GET": manifest},
    "/v2/images/{image_id}/chunks/{chunk}": {"GET": get_chunk, "PUT": put_chunk},
    "/v2/images/{image_id}/chunk-upload": {"POST": begin, "DELETE": abort},
    "/v2/images/{image_id}/chunk-upload/missing": {"POST": missing},
    "/v2/images/{image_id}/chunk-upload/commit": {"POST": commit},
    "/v2/images/{image_id}/spool/lend": {"POST": lend_spool},
    "/v2/images/{image_id}/spool/confirm": {"POST": confirm_spool},
    "/v2/images/{image_id}/spool/return": {"POST": return_spool},
}
