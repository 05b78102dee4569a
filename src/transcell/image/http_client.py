"""The image service reached over HTTP: what a compute host or conductor uses when the
store lives in another process, so a host's only data path to another cell is a URL
(a target that shares the store's filesystem may take a move's spool by rename, but
only one the store lends it through that URL: ``_take_spool``).

It has the methods and return shapes of the in-process ``ImageClient``, and
keeps its guarantees on the client's side of the wire: chunks are hashed here
and only those the store lacks are sent (a few at once), zero chunks are
never sent, and on the way back every chunk is checked against its sha256 and
the whole image against its digest before a file is put in place. The chunk
routes are described in ``transcell.api.image.chunks``.

Requests carry the keystoneauth session's token (a service user), so what an
image call may see and do is that user's, not the end user's: the ``ctx``
arguments are kept so callers need not care which client they hold.
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import os
import urllib.parse
import uuid
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from transcell import exception, statefiles, tally
from transcell.context import RequestContext
from transcell.image import pipeline, sparse
from transcell.image.chunked import DIGEST_HEADER
from transcell.image.service import (
    Progress,
    _BackgroundHash,
    _chunks_of,
    _name_chunk,
    _write_sparse,
    _zeros,
    zero_digest,
)
from transcell.image.spool import taken_bytes
from transcell.image.store import ChunkMissing, digest_of

#: Chunks sent or fetched at once.
WORKERS = 4
#: Data chunks hashed before the store is asked which it lacks (bounds memory:
#: this many chunks are held at once, plus the few being hashed ahead).
WINDOW = 8
#: Digests asked about in one request (the server takes up to 4096).
ASK_BATCH = 1024
_PATCH = "application/openstack-images-v2.1-json-patch"
_OCTET_STREAM = "application/octet-stream"
_VIEW_ONLY = ("self", "file", "schema")
_BY_STATUS: dict[int, type[exception.TranscellError]] = {
    400: exception.Invalid, 401: exception.NotAuthenticated, 403: exception.Forbidden,
    404: exception.NotFound, 409: exception.Conflict, 413: exception.Invalid,
    415: exception.UnsupportedMediaType,
}


def _error_of(resp: Any, image_id: str | None) -> exception.TranscellError:
    """The exception the in-process client would have raised for this error answer."""
    try:
        body = resp.json()
    except ValueError:
        body = None
    body = body if isinstance(body, dict) else {}
    message = body.get("message") or f"The image API answered {resp.status_code}."
    kind = body.get("transcell_error")
    if kind == "ChunkMissing":
        return ChunkMissing(digest=(body.get("missing_chunks") or ["?"])[0])
    if kind == "ChecksumMismatch":
        return exception.ChecksumMismatch(message)
    if resp.status_code == 404 and image_id is not None:
        return exception.ImageNotFound(message, image_id=image_id)
    cls = _BY_STATUS.get(resp.status_code)
    if cls is not None:
        return cls(message)
    error = exception.TranscellError(message)
    error.code = resp.status_code
    return error


def _read_and_name(item: Any) -> tuple[Any, str | None]:
    """A chunk read (if it is a lazy one) and named, on a worker."""
    item = pipeline.resolve(item)
    return item, _name_chunk(item)


def _pointer(key: str) -> str:
    return "/" + key.replace("~", "~0").replace("/", "~1")


def _layout(record: dict[str, Any]) -> list[tuple[str, int]]:
    size, chunk_size, chunks = record["size"], record["chunk_size"], record["chunks"]
    expected = -(-size // chunk_size)
    if len(chunks) != expected:
        raise exception.ChecksumMismatch(what=f"image {record['id']} chunk list",
                                         expected=f"{expected} chunks",
                                         actual=f"{len(chunks)} chunks")
    return [(digest, min(chunk_size, size - i * chunk_size))
            for i, digest in enumerate(chunks)]


class HTTPImageClient:
    """``ImageClient`` over the Image API: ``session`` a keystoneauth Session of a
    service user, ``endpoint`` the Image API root (``http://host:8774/image``)."""

    def __init__(self, session: Any, endpoint: str, workers: int = WORKERS,
                 window: int = WINDOW, connect_retries: int = 2):
        self.session = session
        self.endpoint = endpoint.rstrip("/")
        self.workers = max(1, workers)
        self.window = max(1, window)
        #: retried only when no connection was made, so no request runs twice
        self.connect_retries = connect_retries

    # -- plumbing -------------------------------------------------------------------

    def _url(self, *parts: str) -> str:
        return self.endpoint + "/v2/images" + "".join(
            "/" + urllib.parse.quote(p, safe="") for p in parts)

    def _call(self, method: str, url: str, image_id: str | None = None,
              ok: Iterable[int] = (200, 201, 204), **kwargs: Any) -> Any:
        kwargs.setdefault("connect_retries", self.connect_retries)
        if tally.ENABLED:
            tally.request("image", method, urllib.parse.urlsplit(url).path)
        resp = self.session.request(url, method, raise_exc=False, **kwargs)
        if resp.status_code not in ok:
            raise _error_of(resp, image_id)
        return resp

    # -- records ----------------------------------------------------------------------

    def get(self, ctx: RequestContext, image_id: str) -> dict[str, Any]:
        """The whole record, chunk list included (the chunk protocol's manifest)."""
        return self._call("GET", self._url(image_id, "chunks"), image_id).json()

    def list(self, ctx: RequestContext, filters: dict[str, Any] | None = None,
             limit: int | None = None, marker: str | None = None,
             sort_key: str = "created_at", sort_dir: str = "desc") -> list[dict[str, Any]]:
        """Images as the API lists them (Glance's fields, no chunk lists), every page."""
        filters = dict(filters or {})
        limit = filters.pop("limit", limit)
        query: list[tuple[str, str]] = [("sort_key", str(filters.pop("sort_key", sort_key))),
                                        ("sort_dir", str(filters.pop("sort_dir", sort_dir)))]
        marker = filters.pop("marker", marker)
        for key, value in filters.items():
            values = value if isinstance(value, list | tuple) else [value]
            query += [(key, str(v).lower() if isinstance(v, bool) else str(v))
                      for v in values]
        found: list[dict[str, Any]] = []
        while True:
            page = 1000 if limit is None else min(1000, int(limit) - len(found))
            if page <= 0:
                return found
            params = query + [("limit", str(page))] + ([("marker", marker)] if marker else [])
            body = self._call("GET", self._url() + "?" + urllib.parse.urlencode(params)).json()
            images = body.get("images") or []
            found += [{k: v for k, v in image.items() if k not in _VIEW_ONLY}
                      for image in images]
            if not body.get("next") or len(images) < page:
                return found
            marker = images[-1]["id"]

    def create(self, ctx: RequestContext, /, **fields: Any) -> dict[str, Any]:
        view = self._call("POST", self._url(), json=fields).json()
        return self.get(ctx, view["id"])

    def update(self, ctx: RequestContext, image_id: str, changes: dict[str, Any],
               remove: tuple[str, ...] = ()) -> dict[str, Any]:
        ops = [{"op": "add", "path": _pointer(k), "value": v} for k, v in changes.items()]
        ops += [{"op": "remove", "path": _pointer(k)} for k in remove]
        self._call("PATCH", self._url(image_id), image_id, json=ops,
                   headers={"Content-Type": _PATCH})
        return self.get(ctx, image_id)

    def delete(self, ctx: RequestContext, image_id: str) -> None:
        self._call("DELETE", self._url(image_id), image_id)

    # -- sending ------------------------------------------------------------------------

    def upload_file(self, ctx: RequestContext, image_id: str, path: str,
                    progress: Progress | None = None, hash_algo: str = "sha256",
                    spool: bool = False) -> dict[str, Any]:
        """Upload a local disk, sending only the chunks the store does not hold yet.

        As in process, ``sha256-chunks`` never reads holes and names the image by
        its chunk list; ``sha256`` reads every byte and also gives an md5.
        ``spool`` as for ``upload_chunks`` (chunk lists only).
        """
        tree = hash_algo == sparse.TREE_ALGO
        record = self._begin(image_id, spool=spool and tree)
        try:
            chunk_size = record["chunk_size"]
            if tree:
                total = os.path.getsize(path)
                return self._send(image_id, pipeline.sparse_file_items(path, chunk_size),
                                  total, progress, tree=True)
            with open(path, "rb", buffering=0) as f:
                total = os.fstat(f.fileno()).st_size
                return self._send(image_id, _chunks_of(f, chunk_size, total), total,
                                  progress, tree=False)
        except BaseException:
            self._abort(image_id)
            raise

    def upload_chunks(self, ctx: RequestContext, image_id: str, items: Any, total: int,
                      progress: Progress | None = None, spool: bool = False,
                      taken_from: str | None = None) -> dict[str, Any]:
        """Items as in process: bytes, an int (zeros of that length) or ``("known",
        digest, length)``; a known chunk the store lacks raises ChunkMissing and
        leaves the image queued.

        ``spool``: the store lays the new chunks out as the disk, for a target
        that shares its filesystem to take over (``download_to_file(take=True)``).
        ``taken_from``: the earlier image whose chunks such a target took; known
        chunks it names as taken at the same index are not asked about."""
        taken: set[tuple[int, str]] = set()
        if taken_from is not None:
            earlier = self.get(ctx, taken_from)
            taken = {(i, earlier["chunks"][i]) for i in earlier.get("taken") or ()}
        self._begin(image_id, spool=spool, taken_from=taken_from if taken else None)
        try:
            return self._send(image_id, items, total, progress, tree=True, taken=taken)
        except BaseException:
            self._abort(image_id)
            raise

    def _begin(self, image_id: str, spool: bool = False,
               taken_from: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {}
        if spool:
            body["spool"] = True
        if taken_from is not None:
            body["taken_from"] = taken_from
        return self._call("POST", self._url(image_id, "chunk-upload"), image_id,
                          **({"json": body} if body else {})).json()

    def _abort(self, image_id: str) -> None:
        try:
            self._call("DELETE", self._url(image_id, "chunk-upload"), image_id)
        except Exception:  # the upload's own error is the one to report
            pass

    def _send(self, image_id: str, items: Iterable[Any], total: int,
              progress: Progress | None, tree: bool,
              taken: set[tuple[int, str]] | None = None) -> dict[str, Any]:
        sha = None if tree else _BackgroundHash("sha256")
        md5 = None if tree else _BackgroundHash("md5")
        digests: list[str] = []
        lengths: list[int] = []
        window: list[_Item] = []
        held = 0
        try:
            with ThreadPoolExecutor(self.workers, thread_name_prefix="image-put") as pool:
                sender = _Sender(self, image_id, pool, total, progress)
                # a lazy chunk is read by the worker that names it, not by this thread
                for _lazy, (item, named) in sparse.prefetch(items, _read_and_name,
                                                            workers=pipeline.WORKERS):
                    if isinstance(item, tuple):
                        _, digest, length = item
                        # a chunk the target took is named, neither sent nor asked about
                        data, known = None, not taken or (len(digests), digest) not in taken
                    else:
                        data = _zeros(item) if isinstance(item, int) else item
                        digest, length, known = named, len(data), False
                        if sha is not None and md5 is not None:
                            sha.update(data)
                            md5.update(data)
                        if digest == zero_digest(length):
                            data = None  # the store makes zero chunks itself
                        else:
                            held += 1
                    window.append(_Item(len(digests), digest, length, data, known))
                    digests.append(digest)
                    lengths.append(length)
                    if held >= self.window or len(window) >= ASK_BATCH:
                        sender.send(window)
                        window, held = [], 0
                sender.send(window)
                sender.drain(0)
            size = sum(lengths)
            body: dict[str, Any] = {"size": size, "chunks": digests}
            if tree:
                body.update(os_hash_algo=sparse.TREE_ALGO,
                            os_hash_value=sparse.tree_digest(zip(digests, lengths,
                                                                 strict=True)))
            else:
                assert sha is not None and md5 is not None
                body.update(os_hash_algo="sha256", os_hash_value=sha.hexdigest(),
                            checksum=md5.hexdigest())
        finally:
            if sha is not None and md5 is not None:
                sha.close()
                md5.close()
        record = self._call("POST", self._url(image_id, "chunk-upload", "commit"), image_id,
                            json=body).json()
        return {"bytes_total": record["size"], "bytes_sent": sender.bytes_sent,
                "chunks_total": len(record["chunks"]), "chunks_sent": sender.chunks_sent,
                "checksum": record["checksum"], "os_hash_value": record["os_hash_value"]}

    def _put(self, image_id: str, index: int, digest: str, data: bytes) -> None:
        self._call("PUT", self._url(image_id, "chunks", str(index)), image_id, data=data,
                   log=False, headers={"Content-Type": _OCTET_STREAM, DIGEST_HEADER: digest})

    # -- receiving ----------------------------------------------------------------------

    def _readable(self, ctx: RequestContext, image_id: str) -> dict[str, Any]:
        record = self.get(ctx, image_id)
        if record["status"] != "active":
            raise exception.Conflict(f"Image {image_id} has no data (status "
                                     f"{record['status']}).")
        return record

    def _fetch(self, image_id: str, item: tuple[int, tuple[str, int]]) -> bytes | None:
        """One chunk from the store, only if it is the bytes its digest names."""
        index, (digest, length) = item
        if digest == zero_digest(length):
            return None
        resp = self._call("GET", self._url(image_id, "chunks", str(index)), image_id,
                          ok=(200,), log=False, headers={"Accept": _OCTET_STREAM})
        data = resp.content
        if len(data) != length:
            raise exception.ChecksumMismatch(what=f"length of chunk {index} of image "
                                             f"{image_id}", expected=length, actual=len(data))
        actual = digest_of(data)
        if actual != digest:
            raise exception.ChecksumMismatch(what=f"chunk {index} of image {image_id}",
                                             expected=digest, actual=actual)
        return data

    def read_chunks(self, ctx: RequestContext, image_id: str, indexes: Any
                    ) -> Iterator[bytes]:
        """The image's chunks at ``indexes``, each checked against its digest."""
        layout = _layout(self._readable(ctx, image_id))
        wanted = [(i, layout[i]) for i in indexes]
        for (_, (_, length)), data in sparse.prefetch(
                wanted, lambda item: self._fetch(image_id, item), workers=self.workers):
            yield data if data is not None else _zeros(length)

    def sealed_chunk(self, digest: str, length: int) -> str | None:
        """Never: the store is another process's, perhaps on another host, so every
        chunk comes over HTTP and is checked here."""
        return None

    def download_to_file(self, ctx: RequestContext, image_id: str, dest_path: str,
                         progress: Progress | None = None, take: bool = False
                         ) -> dict[str, Any]:
        """Rebuild an image as a sparse file; nothing appears at ``dest_path`` unless
        every chunk and the whole-image digest match.

        With ``take``, where this host shares the store's filesystem (one machine
        running the image API and compute hosts), the image's spool becomes the
        file by rename and only the rest is fetched; see ``_take_spool``."""
        record = self._readable(ctx, image_id)
        directory = os.path.dirname(os.path.abspath(dest_path))
        tmp = os.path.join(directory, f".{os.path.basename(dest_path)}.part-{uuid.uuid4().hex}")
        tree = record.get("os_hash_algo") == sparse.TREE_ALGO
        taken: set[int] = set()
        if take and tree and record.get("spool"):
            took = self._take_spool(image_id, tmp)
            if took is not None:
                record, taken = took, set(took["taken"])
        if record.get("taken") and not set(record["taken"]) <= taken:
            raise exception.Conflict(f"Image {image_id} handed chunks to a move's target, "
                                     "which holds them instead of the image store.")
        size = record["size"]
        layout = _layout(record)
        whole = None if tree else hashlib.sha256()
        written_digest = None
        timings = pipeline.Timings()
        fd = -1
        try:
            fd = (os.open(tmp, os.O_WRONLY | os.O_CLOEXEC | os.O_NOFOLLOW) if taken
                  else statefiles.create_private(tmp))
            written = offset = 0
            if tree:
                # fetched, checked and written by workers at their own offsets, several
                # at once; any index holding a digest serves that chunk's bytes
                where: dict[str, int] = {}
                for index, (digest, _) in enumerate(layout):
                    if index not in taken:
                        where.setdefault(digest, index)
                rebuild = pipeline.Rebuild(fd, lambda digest, length: self._fetch(
                    image_id, (where[digest], (digest, length))), timings=timings)
                chunk_size = int(record["chunk_size"])
                wanted = (item for item in pipeline.layout_offsets(layout)
                          if item[0] // chunk_size not in taken)
                for (offset, _, length), wrote in pipeline.ordered(
                        wanted, rebuild, workers=max(self.workers, pipeline.WORKERS)):
                    written += wrote
                    if progress is not None:
                        progress(offset + length, size)
            for (_, (_, length)), data in sparse.prefetch(
                    [] if tree else enumerate(layout),
                    lambda item: self._fetch(image_id, item), workers=self.workers):
                whole.update(_zeros(length) if data is None else data)  # type: ignore[union-attr]
                if data is not None:
                    written += _write_sparse(fd, data, offset)
                offset += length
                if progress is not None:
                    progress(offset, size)
            os.ftruncate(fd, size)
            # every chunk written was checked against its digest on arrival, so the
            # chunk-list digest of the file is the layout's
            actual = sparse.tree_digest(layout) if tree else whole.hexdigest()  # type: ignore[union-attr]
            if actual != record["os_hash_value"]:
                raise exception.ChecksumMismatch(what=f"image {image_id}",
                                                 expected=record["os_hash_value"],
                                                 actual=actual)
            if tree:
                written_digest = actual
            os.close(fd)
            fd = -1
            os.replace(tmp, dest_path)
        except BaseException:
            if fd >= 0:
                os.close(fd)
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
            raise
        return {"bytes_total": size, "bytes_written": written,
                "bytes_taken": taken_bytes(record, taken),
                "chunks_total": len(record["chunks"]), "checksum": record["checksum"],
                "os_hash_value": record["os_hash_value"], "written_digest": written_digest,
                "stages": timings.as_dict()}

    def _take_spool(self, image_id: str, dest: str) -> dict[str, Any] | None:
        """Take the image's spool by rename, if the store lends it and this host
        shares its filesystem; the image's record (naming the taken chunks) or None.

        What is trusted instead of re-hashing is the store's seal, which the
        lend carries: the file renamed is the one the store wrote and hashed if
        its device, inode, size and times are still those the store recorded
        (checked before the rename, and all but the ctime, which a rename
        moves, after it). Anything else (another host, another filesystem, no
        permission, a file changed since) gives the spool back, and every chunk
        is fetched and checked instead.
        """
        try:
            offered = self._call("POST", self._url(image_id, "spool", "lend"), image_id).json()
        except exception.Conflict:
            return None  # nothing to lend: read the chunks
        path, seal = offered.get("path") or "", list(offered.get("signature") or ())
        renamed = False
        try:
            if (os.path.basename(path) == image_id and len(seal) == 5
                    and os.path.basename(os.path.dirname(path)) == "spools"):
                st = os.stat(path)
                if ([st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns] == seal
                        and os.stat(os.path.dirname(dest)).st_dev == st.st_dev):
                    os.rename(path, dest)
                    renamed = True
                    st = os.stat(dest)
                    if [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns] != seal[:4]:
                        os.rename(dest, path)  # not the store's file after all
                        renamed = False
        except OSError:
            if renamed:
                raise
            renamed = False
        if not renamed:
            self._call("POST", self._url(image_id, "spool", "return"), image_id)
            return None
        try:
            return self._call("POST", self._url(image_id, "spool", "confirm"), image_id).json()
        except BaseException as exc:
            # not confirmed (lent too long, the image changed, the API unreachable): the
            # file goes back where the store (or the store restarted) will find it
            with contextlib.suppress(OSError):
                os.rename(dest, path)
            if not isinstance(exc, exception.TranscellError):
                raise
            with contextlib.suppress(exception.TranscellError):
                self._call("POST", self._url(image_id, "spool", "return"), image_id)
            return None


@dataclass(frozen=True)
class _Item:
    index: int
    digest: str
    length: int
    data: bytes | None  # None: zeros, or a chunk the store is said to hold
    known: bool  # named by the caller as one the store holds


class _Sender:
    """Sends the chunks of one upload that the store lacks, a few at once.

    A window of chunks is asked about in one request; the PUTs of the missing
    ones run on the pool while the next window is read and hashed, with at
    most two per worker outstanding, so memory stays bounded.
    """

    def __init__(self, client: HTTPImageClient, image_id: str, pool: ThreadPoolExecutor,
                 total: int, progress: Progress | None):
        self.client, self.image_id, self.pool = client, image_id, pool
        self.total, self.progress = total, progress
        self.inflight: collections.deque[Future] = collections.deque()
        self.submitted: set[str] = set()
        self.done = self.chunks_sent = self.bytes_sent = 0

    def send(self, window: list[_Item]) -> None:
        ask = list(dict.fromkeys(i.digest for i in window if i.data is not None or i.known))
        lacking: set[str] = set()
        for start in range(0, len(ask), ASK_BATCH):
            lacking.update(self.client._call(
                "POST", self.client._url(self.image_id, "chunk-upload", "missing"),
                self.image_id, json={"digests": ask[start:start + ASK_BATCH]}).json()["missing"])
        for item in window:
            if item.digest in lacking and item.data is None:
                # named as held, but the store lacks it
                raise ChunkMissing(digest=item.digest)
        for item in window:
            if item.digest in lacking and item.digest not in self.submitted:
                # a chunk already on its way is reported missing until it lands
                self.submitted.add(item.digest)
                self.inflight.append(self.pool.submit(
                    self.client._put, self.image_id, item.index, item.digest, item.data))
                self.chunks_sent += 1
                self.bytes_sent += item.length
                self.drain(2 * self.client.workers)
        if self.progress is not None:
            for item in window:
                self.done += item.length
                self.progress(self.done, self.total)

    def drain(self, keep: int) -> None:
        """Wait until at most ``keep`` PUTs are outstanding; the first failure raises."""
        while len(self.inflight) > keep:
            self.inflight.popleft().result()


def from_config() -> HTTPImageClient:
    """The client a service process uses: ``[image] api_url`` with the service user's session."""
    from transcell import service_auth
    from transcell.conf import CONF

    url = getattr(CONF.image, "api_url", None)
    if not url:
        raise exception.Invalid("[image] api_url is not set: the image service is in this "
                                "process, use ImageClient.")
    return HTTPImageClient(service_auth.session(), url)
