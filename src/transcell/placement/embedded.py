"""The real openstack-placement service, mounted in-process.

Placement is a separate service that happens to run inside the embedded
cloud, so it gets its own oslo.config object: transcell's options never reach
it and its options never appear in transcell's configuration.

Placement keeps its database engine in a module-level enginefacade that can be
configured only once per interpreter, and its policy enforcer is a module
global too. So there is one Placement database per process: ``load_app`` with
the URL already loaded returns the same app, and another URL raises
``PlacementAlreadyLoaded``.

SQLite files run in WAL mode with a busy timeout. SQLite still allows only one
writer at a time, and Placement's transactions read before they write, which
SQLite cannot upgrade safely under concurrency; so writes to a SQLite-backed
Placement are serialised within the process (reads stay concurrent).
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
from collections.abc import Callable, Iterable

import webob
import webob.dec
import webob.exc
from oslo_config import cfg
from sqlalchemy import event
from sqlalchemy.engine import make_url

from transcell import context as tc_context
from transcell import exception, tally
from transcell.wsgi.app import parse_json, undecodable_request

LOG = logging.getLogger(__name__)

WSGIApp = Callable[..., Iterable[bytes]]

_load_lock = threading.Lock()
_loaded: tuple[str, WSGIApp] | None = None

SQLITE_BUSY_TIMEOUT_MS = 30000
_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class PlacementAlreadyLoaded(RuntimeError):
    """Placement's database layer is process-global; only one database per process."""


def database_url() -> str:
    """The in-process Placement's database: configured, or a SQLite file in the state dir."""
    from transcell import conf

    return (conf.CONF.placement.database_connection
            or f"sqlite:///{conf.state_path('placement.sqlite')}")


def build_config(db_url: str) -> cfg.ConfigOpts:
    """Placement's own configuration: no command line, no config files, no transcell options."""
    from placement import conf as placement_conf

    conf = cfg.ConfigOpts()
    placement_conf.register_opts(conf)
    # connection is a required option, so it must be set before parsing.
    conf.set_override("connection", db_url, group="placement_database")
    conf.set_override("sync_on_startup", True, group="placement_database")
    conf.set_override("auth_strategy", "noauth2", group="api")
    conf([], project="placement", default_config_files=[], default_config_dirs=[],
         use_env=False)
    return conf


def load_app(db_url: str) -> WSGIApp:
    """Build (once per process) the Placement WSGI app on ``db_url``, migrating its schema."""
    global _loaded
    with _load_lock:
        if _loaded is not None:
            loaded_url, app = _loaded
            if loaded_url == db_url:
                return app
            raise PlacementAlreadyLoaded(
                f"Placement is already loaded on {_safe(loaded_url)} in this process; it "
                f"cannot also serve {_safe(db_url)} (its database layer is process-global).")
        app = _build(db_url)
        _loaded = (db_url, app)
        return app


def loaded_url() -> str | None:
    """The database URL Placement was loaded on in this process, if it has been."""
    with _load_lock:
        return _loaded[0] if _loaded else None


def _build(db_url: str) -> WSGIApp:
    from placement import db_api, deploy

    if db_api.configure.called:
        raise PlacementAlreadyLoaded(
            "Placement's database layer was already configured in this process (by other "
            "code, or by an earlier load that failed); restart the process to load it.")
    url = make_url(db_url)
    is_sqlite_file = url.drivername.startswith("sqlite") and url.database not in (
        None, "", ":memory:")
    if is_sqlite_file:
        os.makedirs(os.path.dirname(os.path.abspath(url.database)), exist_ok=True)
        from transcell.db.session import make_sqlite_file_private
        make_sqlite_file_private(db_url)

    conf = build_config(db_url)
    db_api.configure(conf)
    # oslo.db's checkin hook sleeps(0) after every transaction so that eventlet's
    # green threads get a turn; Placement here runs in native threads, where that
    # sleep only hands the GIL to whichever thread wants it and the request waits
    # to get it back (a quarter of a move's time in Placement went there)
    db_api.placement_context_manager.configure(thread_checkin=False)
    if tally.ENABLED:
        tally.watch_engine(db_api.get_placement_engine(), db_url)
    if is_sqlite_file:
        event.listen(db_api.get_placement_engine(), "connect", _sqlite_pragmas)
    app = deploy.loadapp(conf)
    if is_sqlite_file:
        _hold_open(url.database)
    LOG.info("Placement loaded in-process on %s", _safe(db_url))
    if url.drivername.startswith("sqlite"):
        return SerializedWrites(app)
    return app


#: One idle connection to a SQLite-backed Placement's file, for the process's lifetime.
_held_open: list[sqlite3.Connection] = []


def _hold_open(path: str) -> None:
    """Keep the database file open so that closing a connection is cheap.

    oslo.db gives a SQLite file no pool (NullPool): every Placement
    transaction opens a connection and closes it. SQLite's last connection
    to close checkpoints the WAL into the database (with an fsync) and
    deletes the WAL and its index, so without another connection open every
    Placement request paid that, several times. This connection reads the
    schema once and then sits idle, holding no transaction: it never blocks
    a writer or a checkpoint, it only keeps the WAL alive between requests.
    """
    conn = sqlite3.connect(path, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("SELECT count(*) FROM sqlite_master").fetchall()
    _held_open.append(conn)


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    # Runs after oslo.db's own connect hook, which puts the connection in
    # autocommit mode, so these take effect immediately.
    dbapi_conn.execute("PRAGMA journal_mode=WAL")
    dbapi_conn.execute("PRAGMA synchronous=NORMAL")
    dbapi_conn.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")


def _safe(db_url: str) -> str:
    return make_url(db_url).render_as_string(hide_password=True)


class SerializedWrites:
    """Let one writing request at a time into a SQLite-backed Placement."""

    def __init__(self, app: WSGIApp):
        self.app = app
        self._lock = threading.Lock()

    def __call__(self, environ, start_response):
        if environ.get("REQUEST_METHOD", "GET") in _READ_METHODS:
            return self.app(environ, start_response)
        with self._lock:
            # Drain the body inside the lock: the work may happen lazily.
            return list(self.app(environ, start_response))


# Headers a caller could use to claim an identity; only ProtectedPlacement sets them.
_IDENTITY_HEADER_PREFIXES = (
    "HTTP_X_AUTH_", "HTTP_X_USER", "HTTP_X_PROJECT", "HTTP_X_TENANT", "HTTP_X_ROLE",
    "HTTP_X_DOMAIN", "HTTP_X_SERVICE_", "HTTP_X_IDENTITY_STATUS", "HTTP_X_IS_ADMIN_PROJECT",
    "HTTP_X_SYSTEM_SCOPE", "HTTP_OPENSTACK_SYSTEM_SCOPE", "HTTP_X_STORAGE_TOKEN",
    "HTTP_X_TRUST", "HTTP_X_APP_CRED",
)
ALLOWED_ROLES = frozenset({"admin", "service"})


class ProtectedPlacement:
    """Placement on the public port, behind transcell's own tokens.

    The in-process Placement runs with noauth2, which trusts whatever identity
    a request names. This wrapper lets only the version document through
    unauthenticated, checks every other request's transcell token, admits
    admin and service roles only (as Placement's default policy would), and
    then hands Placement the verified identity in the form noauth2 reads.
    """

    def __init__(self, app: WSGIApp,
                 authenticate: Callable[[webob.Request], tc_context.RequestContext]):
        self.app = app
        self.authenticate = authenticate

    @webob.dec.wsgify
    def __call__(self, req: webob.Request) -> webob.Response:
        # Placement reads paths, queries and bodies deep inside itself, where bytes
        # that are not UTF-8 or JSON nested past its parser's stack become 500s.
        problem = undecodable_request(req.environ)
        if problem is not None:
            return _error(400, problem)
        if req.method in ("POST", "PUT", "PATCH") and req.body:
            try:
                parse_json(req.body)
            except exception.Invalid as exc:
                return _error(400, exc.message)
        if req.path_info in ("", "/"):
            req.path_info = "/"
            _strip_identity(req)
            return req.get_response(self.app)
        try:
            ctx = self.authenticate(req)
        except exception.TranscellError as exc:
            code = exc.code if 400 <= exc.code < 500 else 401
            return _error(code, exc.message)
        if not ALLOWED_ROLES.intersection(ctx.roles):
            return _error(403, "Access to Placement requires the admin or service role.")
        _strip_identity(req)
        req.headers["X-Auth-Token"] = f"{ctx.user_id}:{ctx.project_id or ctx.user_id}"
        req.headers["X-Roles"] = ",".join(ctx.roles)
        return req.get_response(self.app)


def _strip_identity(req: webob.Request) -> None:
    for key in [k for k in req.environ if k.startswith(_IDENTITY_HEADER_PREFIXES)]:
        del req.environ[key]


def _error(status: int, detail: str) -> webob.Response:
    """An error in Placement's own envelope, so clients parse it like any other."""
    title = webob.exc.status_map[status].title
    body = {"errors": [{"status": status, "title": title, "detail": detail,
                        "code": "placement.undefined_code",
                        "request_id": tc_context.new_request_id()}]}
    resp = webob.Response(status=status, content_type="application/json", charset="utf-8")
    resp.text = json.dumps(body)
    return resp
