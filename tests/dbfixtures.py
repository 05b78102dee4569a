"""Throw-away databases on every engine transcell supports, for tests.

SQLite always works; PostgreSQL and MariaDB are used when their server answers.
Under CI (``CI=true``) a server that does not answer fails the test instead of
skipping it, so a broken service cannot turn the multi-engine suite green.

The admin URLs default to the local services and can be pointed elsewhere with
``TRANSCELL_TEST_POSTGRESQL_URL`` and ``TRANSCELL_TEST_MARIADB_URL``.
"""

from __future__ import annotations

import functools
import os
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from transcell.db import session

SQLITE = "sqlite"
POSTGRESQL = "postgresql"
MARIADB = "mariadb"
BACKENDS = (SQLITE, POSTGRESQL, MARIADB)
SERVER_BACKENDS = (POSTGRESQL, MARIADB)

# Admin connections: they reach a database that always exists, to create and
# drop the per-test ones.
ADMIN_URLS = {
    POSTGRESQL: os.environ.get("TRANSCELL_TEST_POSTGRESQL_URL",
                               "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"),
    MARIADB: os.environ.get("TRANSCELL_TEST_MARIADB_URL",
                            "mysql+pymysql://root@127.0.0.1:3306/?charset=utf8mb4"),
}

NAME_PREFIX = "transcell_t_"


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def backend_params() -> list:
    """Parameters for a backend fixture; server engines carry the ``backends`` marker
    so ``-m "not backends"`` gives a SQLite-only run."""
    return [pytest.param(name, id=name,
                         marks=[pytest.mark.backends] if name in SERVER_BACKENDS else [])
            for name in BACKENDS]


def _admin_engine(backend: str) -> sa.Engine:
    # NullPool: no idle admin connection outlives an operation, so nothing of
    # ours lingers in the server between tests.
    return sa.create_engine(ADMIN_URLS[backend], poolclass=NullPool,
                            isolation_level="AUTOCOMMIT",
                            connect_args={"connect_timeout": 3})


@functools.cache
def unreachable_reason(backend: str) -> str | None:
    """None when the backend can be used, else why not (checked once per run)."""
    if backend == SQLITE:
        return None
    try:
        engine = _admin_engine(backend)
        try:
            with engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
        finally:
            engine.dispose()
    except Exception as exc:  # a missing driver or a refused login is as bad as no server
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
        where = make_url(ADMIN_URLS[backend]).render_as_string()
        return f"{backend} at {where} is not reachable: {detail}"
    return None


def require(backend: str) -> None:
    """Skip when a server backend is missing, or fail when CI demands every engine."""
    reason = unreachable_reason(backend)
    if reason is None:
        return
    if in_ci():
        pytest.fail(f"CI=true requires every database backend; {reason}", pytrace=False)
    pytest.skip(reason)


class DatabaseFactory:
    """Creates empty, uniquely named databases on one backend and drops them all."""

    def __init__(self, backend: str, workdir: Path) -> None:
        self.backend = backend
        self.workdir = workdir
        self.urls: list[str] = []

    def create(self, collation: str | None = None) -> str:
        """``collation``: a MariaDB database's own (a deployment's, say); else the server's."""
        name = NAME_PREFIX + uuid.uuid4().hex[:8]
        if self.backend == SQLITE:
            url = f"sqlite:///{self.workdir / (name + '.db')}"
        else:
            engine = _admin_engine(self.backend)
            try:
                with engine.connect() as conn:
                    if self.backend == POSTGRESQL:
                        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
                    else:
                        conn.execute(sa.text(
                            f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4"
                            + (f" COLLATE {collation}" if collation else "")))
            finally:
                engine.dispose()
            url = (make_url(ADMIN_URLS[self.backend]).set(database=name)
                   .render_as_string(hide_password=False))
        self.urls.append(url)
        return url

    def drop_all(self) -> None:
        for url in reversed(self.urls):
            # Only our own engines: other code in the run may hold engines of its own.
            session.get_engine(url).dispose()
            if self.backend != SQLITE:
                self._drop(make_url(url).database)
        self.urls.clear()

    def _drop(self, name: str) -> None:
        engine = _admin_engine(self.backend)
        try:
            with engine.connect() as conn:
                if self.backend == POSTGRESQL:
                    conn.execute(sa.text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = :name AND pid <> pg_backend_pid()"), {"name": name})
                    conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
                else:
                    # A connection left inside a transaction would make DROP wait
                    # on its metadata lock.
                    ids = conn.execute(sa.text(
                        "SELECT id FROM information_schema.processlist "
                        "WHERE db = :name AND id <> CONNECTION_ID()"), {"name": name})
                    for (conn_id,) in ids.all():
                        try:
                            conn.execute(sa.text(f"KILL CONNECTION {int(conn_id)}"))
                        except sa.exc.DBAPIError:
                            pass  # it went away on its own
                    conn.execute(sa.text(f"DROP DATABASE IF EXISTS `{name}`"))
        finally:
            engine.dispose()
