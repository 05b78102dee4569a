"""Databases and their users for the distributed layout, on PostgreSQL or MariaDB.

Every database (the API DB, cell0, each cell, the network, volume and image DBs,
Placement's) gets a user of its own that may use that database only, so a service
holding one cell's credentials cannot read or write another cell's data. The helpers
are idempotent:
the launcher runs them on every start and after a crash halfway through, and a
second run only re-asserts the password and the privileges.

PostgreSQL on this machine trusts connections from 127.0.0.1, so a password is not
what keeps cells apart there: each database is owned by its user and CONNECT is
revoked from PUBLIC, so any other (non-superuser) role is refused at connect time.
MariaDB checks the password and the per-database grant.

Admin connections use the local superusers (postgres, root); the environment
variables ``TRANSCELL_POSTGRESQL_ADMIN_URL`` and ``TRANSCELL_MARIADB_ADMIN_URL``
point them elsewhere.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import sqlalchemy as sa
from sqlalchemy.engine import URL, make_url
from sqlalchemy.pool import NullPool

POSTGRESQL = "postgresql"
MARIADB = "mariadb"
ENGINES = (POSTGRESQL, MARIADB)

DEFAULT_ADMIN_URLS = {
    POSTGRESQL: "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres",
    MARIADB: "mysql+pymysql://root@127.0.0.1:3306/?charset=utf8mb4",
}
_ADMIN_ENV = {POSTGRESQL: "TRANSCELL_POSTGRESQL_ADMIN_URL",
              MARIADB: "TRANSCELL_MARIADB_ADMIN_URL"}

# Hosts a MariaDB account is made for: '%' for services on other machines or in
# network namespaces; the loopback names too, because an anonymous account on
# 'localhost' (stock installs have one) would otherwise win for local clients.
MARIADB_HOSTS = ("%", "localhost", "127.0.0.1")

# Identifiers are interpolated into DDL (no bind parameters there), so only plain
# names are accepted; 32 characters is the smaller of the two engines' user limits.
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,31}$")


class DatabaseSetupError(RuntimeError):
    """A database or user could not be created, changed or dropped."""


def admin_url(engine: str) -> str:
    _check_engine(engine)
    return os.environ.get(_ADMIN_ENV[engine]) or DEFAULT_ADMIN_URLS[engine]


def _check_engine(engine: str) -> None:
    if engine not in ENGINES:
        raise ValueError(f"unknown database engine {engine!r}; expected one of {ENGINES}")


def _check_name(kind: str, value: str) -> None:
    if not _NAME.match(value):
        raise ValueError(f"{kind} {value!r} must be a letter or _ followed by up to 31 "
                         "letters, digits or _")


@contextmanager
def _admin(engine: str) -> Iterator[sa.Connection]:
    # NullPool and AUTOCOMMIT: CREATE/DROP DATABASE refuse to run in a transaction,
    # and no admin connection should linger in the server afterwards.
    eng = sa.create_engine(admin_url(engine), poolclass=NullPool,
                           isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 5})
    try:
        with eng.connect() as conn:
            yield conn
    finally:
        eng.dispose()


def database_url(engine: str, name: str, user: str, password: str) -> str:
    """The SQLAlchemy URL a service uses to reach ``name`` as ``user``."""
    _check_engine(engine)
    admin = make_url(admin_url(engine))
    if engine == POSTGRESQL:
        url = URL.create("postgresql+psycopg2", username=user, password=password,
                         host=admin.host or "127.0.0.1", port=admin.port or 5432,
                         database=name)
    else:
        url = URL.create("mysql+pymysql", username=user, password=password,
                         host=admin.host or "127.0.0.1", port=admin.port or 3306,
                         database=name, query={"charset": "utf8mb4"})
    return url.render_as_string(hide_password=False)


def ensure_database(engine: str, name: str, user: str, password: str) -> str:
    """Create (or re-assert) database ``name`` and ``user`` allowed on it alone; return its URL.

    An existing user gets ``password`` again, so the URL returned always works.
    """
    _check_engine(engine)
    _check_name("database name", name)
    _check_name("user name", user)
    if not password:
        raise ValueError("a database user needs a password")
    try:
        with _admin(engine) as conn:
            if engine == POSTGRESQL:
                _ensure_postgresql(conn, name, user, password)
            else:
                _ensure_mariadb(conn, name, user, password)
    except sa.exc.DBAPIError as exc:
        raise DatabaseSetupError(f"setting up {engine} database {name} for {user} "
                                 f"failed: {_first_line(exc)}") from exc
    return database_url(engine, name, user, password)


def _ensure_postgresql(conn: sa.Connection, name: str, user: str, password: str) -> None:
    role_exists = conn.scalar(sa.text("SELECT 1 FROM pg_roles WHERE rolname = :u"),
                              {"u": user})
    verb = "ALTER" if role_exists else "CREATE"
    # psycopg2 quotes the parameter client-side, which is what a utility statement needs.
    conn.execute(sa.text(f'{verb} ROLE "{user}" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE '
                         "PASSWORD :pw"), {"pw": password})
    db_exists = conn.scalar(sa.text("SELECT 1 FROM pg_database WHERE datname = :n"),
                            {"n": name})
    if db_exists:
        conn.execute(sa.text(f'ALTER DATABASE "{name}" OWNER TO "{user}"'))
    else:
        conn.execute(sa.text(f'CREATE DATABASE "{name}" OWNER "{user}" ENCODING \'UTF8\' '
                             "TEMPLATE template0"))
    # Trust authentication on loopback ignores passwords: the CONNECT privilege is
    # what refuses every other cell's role.
    conn.execute(sa.text(f'REVOKE ALL ON DATABASE "{name}" FROM PUBLIC'))
    conn.execute(sa.text(f'GRANT ALL ON DATABASE "{name}" TO "{user}"'))


#: A deployment's MariaDB databases sort text by Unicode rules; a connection's own
#: collation (utf8mb4's default) differs, so a query must not mix the two.
MARIADB_COLLATION = "utf8mb4_unicode_ci"


def _ensure_mariadb(conn: sa.Connection, name: str, user: str, password: str) -> None:
    conn.execute(sa.text(f"CREATE DATABASE IF NOT EXISTS `{name}` CHARACTER SET utf8mb4 "
                         f"COLLATE {MARIADB_COLLATION}"))
    for host in MARIADB_HOSTS:
        account = f"'{user}'@'{host}'"
        conn.execute(sa.text(f"CREATE USER IF NOT EXISTS {account} IDENTIFIED BY :pw"),
                     {"pw": password})
        conn.execute(sa.text(f"ALTER USER {account} IDENTIFIED BY :pw"), {"pw": password})
        conn.execute(sa.text(f"GRANT ALL PRIVILEGES ON `{name}`.* TO {account}"))


def drop_database(engine: str, name: str, user: str | None = None) -> None:
    """Drop database ``name`` (closing its connections) and, if given, ``user``; no error
    when either is already gone."""
    _check_engine(engine)
    _check_name("database name", name)
    if user is not None:
        _check_name("user name", user)
    try:
        with _admin(engine) as conn:
            if engine == POSTGRESQL:
                conn.execute(sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = :n AND pid <> pg_backend_pid()"), {"n": name})
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
                if user is not None:
                    conn.execute(sa.text(f'DROP ROLE IF EXISTS "{user}"'))
            else:
                _kill_mariadb_sessions(conn, name)
                conn.execute(sa.text(f"DROP DATABASE IF EXISTS `{name}`"))
                if user is not None:
                    for host in MARIADB_HOSTS:
                        conn.execute(sa.text(f"DROP USER IF EXISTS '{user}'@'{host}'"))
    except sa.exc.DBAPIError as exc:
        raise DatabaseSetupError(f"dropping {engine} database {name} failed: "
                                 f"{_first_line(exc)}") from exc


def _kill_mariadb_sessions(conn: sa.Connection, name: str) -> None:
    # A session idle inside a transaction holds a metadata lock DROP would wait on.
    ids = conn.execute(sa.text("SELECT id FROM information_schema.processlist "
                               "WHERE db = :n AND id <> CONNECTION_ID()"), {"n": name})
    for (conn_id,) in ids.all():
        try:
            conn.execute(sa.text(f"KILL CONNECTION {int(conn_id)}"))
        except sa.exc.DBAPIError:
            pass  # it ended on its own meanwhile


def list_databases(engine: str, prefix: str) -> list[str]:
    """Names of the databases on ``engine`` starting with ``prefix`` (for cleanup)."""
    _check_engine(engine)
    with _admin(engine) as conn:
        if engine == POSTGRESQL:
            names = conn.scalars(sa.text("SELECT datname FROM pg_database"))
        else:
            names = conn.scalars(sa.text("SELECT schema_name FROM information_schema.schemata"))
        return sorted(n for n in names if n.startswith(prefix))


def list_users(engine: str, prefix: str) -> list[str]:
    """Names of the users (roles) on ``engine`` starting with ``prefix`` (for cleanup)."""
    _check_engine(engine)
    with _admin(engine) as conn:
        if engine == POSTGRESQL:
            names = conn.scalars(sa.text("SELECT rolname FROM pg_roles"))
        else:
            names = conn.scalars(sa.text("SELECT DISTINCT user FROM mysql.user"))
        return sorted(n for n in names if n.startswith(prefix))


def drop_all(prefix: str, engines: Sequence[str] = ENGINES) -> None:
    """Drop every database and then every user whose name starts with ``prefix``."""
    if not prefix:
        raise ValueError("refusing to drop every database: give a non-empty prefix")
    for engine in engines:
        for name in list_databases(engine, prefix):
            drop_database(engine, name)
        for user in list_users(engine, prefix):
            _drop_user(engine, user)


def _drop_user(engine: str, user: str) -> None:
    _check_name("user name", user)
    with _admin(engine) as conn:
        if engine == POSTGRESQL:
            conn.execute(sa.text(f'DROP ROLE IF EXISTS "{user}"'))
        else:
            hosts = conn.scalars(sa.text("SELECT host FROM mysql.user WHERE user = :u"),
                                 {"u": user}).all()
            for host in hosts:
                conn.execute(sa.text("DROP USER IF EXISTS :u@:h"), {"u": user, "h": host})


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else repr(exc)
