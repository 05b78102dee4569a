"""One engine per database URL, created once, and sessions that target a cell.

Code never builds a connection string: it asks for the API database or
targets a cell (by its mapping), and gets a session bound to the right engine.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from transcell import tally

_lock = threading.Lock()
_engines: dict[str, Engine] = {}
_makers: dict[str, sessionmaker[Session]] = {}


class HasDatabase(Protocol):
    database_connection: str


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def make_sqlite_file_private(url: str) -> None:
    """Create a SQLite database file 0600 before SQLite does (it would use 0644 less the
    umask); its -wal and -shm files then take the same mode."""
    from sqlalchemy.engine import make_url

    from transcell import statefiles
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    statefiles.ensure_private_file(database)
    for suffix in ("-wal", "-shm", "-journal"):
        statefiles.tighten(database + suffix)


def get_engine(url: str) -> Engine:
    with _lock:
        engine = _engines.get(url)
        if engine is None:
            if url.startswith("sqlite"):
                make_sqlite_file_private(url)
                engine = create_engine(url, connect_args={"check_same_thread": False,
                                                          "timeout": 30})
                event.listen(engine, "connect", _sqlite_pragmas)
            else:
                engine = create_engine(url, pool_pre_ping=True, pool_size=10,
                                       max_overflow=20)
            if tally.ENABLED:
                tally.watch_engine(engine, url)
            _engines[url] = engine
            _makers[url] = sessionmaker(bind=engine, expire_on_commit=False)
        return engine


@contextmanager
def session_for(url: str) -> Iterator[Session]:
    """A session in one transaction: committed on success, rolled back on error."""
    get_engine(url)
    session = _makers[url]()
    try:
        with session.begin():
            yield session
    finally:
        session.close()


def api_session() -> Iterator[Session]:
    from transcell import conf
    return session_for(conf.api_database_url())


def cell_session(cell: HasDatabase) -> Iterator[Session]:
    """Target a cell: the session reads and writes that cell's database."""
    return session_for(cell.database_connection)


def dispose_all() -> None:
    with _lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()
        _makers.clear()
