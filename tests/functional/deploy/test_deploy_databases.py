"""Per-database users on PostgreSQL and MariaDB: created idempotently, dropped cleanly,
and unable to reach any database but their own."""

from __future__ import annotations

from collections.abc import Iterator

import provisioned
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from transcell.deploy import databases


@pytest.fixture
def provisioner() -> Iterator[provisioned.Provisioner]:
    made = provisioned.Provisioner()
    yield made
    made.drop_all()


def _connect_error(url: str) -> str | None:
    """None when ``url`` accepts a connection, else the server's refusal."""
    engine = sa.create_engine(url, poolclass=NullPool, connect_args={"connect_timeout": 5})
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        return None
    except sa.exc.OperationalError as exc:
        return str(exc.orig)
    finally:
        engine.dispose()


def _write_and_read(url: str, value: int) -> list[int]:
    engine = sa.create_engine(url, poolclass=NullPool)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE IF NOT EXISTS probe (v INTEGER)"))
            conn.execute(sa.text("INSERT INTO probe (v) VALUES (:v)"), {"v": value})
            return list(conn.execute(sa.text("SELECT v FROM probe ORDER BY v")).scalars())
    finally:
        engine.dispose()


@pytest.mark.parametrize("engine", provisioned.ENGINE_PARAMS)
def test_ensure_is_idempotent_and_drop_removes_database_and_user(
        engine: str, provisioner: provisioned.Provisioner) -> None:
    made = provisioner.create(engine, "one")
    assert make_url(made.url).database == made.name
    assert make_url(made.url).username == made.user
    assert _write_and_read(made.url, 1) == [1]

    # a second run (a restart of the launcher) keeps the data and the URL working
    again = databases.ensure_database(engine, made.name, made.user, made.password)
    assert again == made.url
    assert _write_and_read(made.url, 2) == [1, 2]
    assert databases.list_databases(engine, made.name) == [made.name]
    assert databases.list_users(engine, made.user) == [made.user]

    databases.drop_database(engine, made.name, made.user)
    assert databases.list_databases(engine, made.name) == []
    assert databases.list_users(engine, made.user) == []
    assert _connect_error(made.url) is not None
    # dropping what is gone is not an error (cleanup after a crash)
    databases.drop_database(engine, made.name, made.user)


@pytest.mark.parametrize("engine", provisioned.ENGINE_PARAMS)
def test_user_of_one_database_cannot_connect_to_another(
        engine: str, provisioner: provisioned.Provisioner) -> None:
    cell1 = provisioner.create(engine, "cell1")
    cell2 = provisioner.create(engine, "cell2")
    assert _connect_error(cell1.url) is None
    assert _connect_error(cell2.url) is None

    # cell2's own credentials, aimed at cell1's database
    cross = make_url(cell2.url).set(database=cell1.name).render_as_string(hide_password=False)
    refusal = _connect_error(cross)

    assert refusal is not None, f"{cell2.user} connected to {cell1.name} on {engine}"
    expected = ("permission denied for database" if engine == databases.POSTGRESQL
                else "Access denied")
    assert expected in refusal
    # and the other way round
    back = make_url(cell1.url).set(database=cell2.name).render_as_string(hide_password=False)
    assert _connect_error(back) is not None


@pytest.mark.parametrize("engine", provisioned.ENGINE_PARAMS)
def test_a_plain_new_database_would_be_open_to_every_user(
        engine: str, provisioner: provisioned.Provisioner) -> None:
    """The refusal above comes from the privileges ensure_database sets, not from the
    server refusing everything: a database made without them lets the user in."""
    other = provisioner.create(engine, "other")
    name = f"{provisioned.PREFIX}{provisioner.run}_plain"
    admin = sa.create_engine(databases.admin_url(engine), poolclass=NullPool,
                             isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            if engine == databases.POSTGRESQL:
                conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
            else:
                conn.execute(sa.text(f"CREATE DATABASE `{name}`"))
                conn.execute(sa.text(f"GRANT ALL ON `{name}`.* TO '{other.user}'@'%'"))
                conn.execute(sa.text(f"GRANT ALL ON `{name}`.* TO "
                                     f"'{other.user}'@'localhost'"))
                conn.execute(sa.text(f"GRANT ALL ON `{name}`.* TO "
                                     f"'{other.user}'@'127.0.0.1'"))
    finally:
        admin.dispose()
    try:
        url = make_url(other.url).set(database=name).render_as_string(hide_password=False)
        assert _connect_error(url) is None
    finally:
        databases.drop_database(engine, name)


@pytest.mark.backends
def test_mariadb_password_is_checked_and_replaced_by_a_new_ensure(
        provisioner: provisioned.Provisioner) -> None:
    made = provisioner.create(databases.MARIADB, "pw")
    wrong = make_url(made.url).set(password="not-it").render_as_string(hide_password=False)
    assert "Access denied" in (_connect_error(wrong) or "")

    new_url = databases.ensure_database(databases.MARIADB, made.name, made.user, "fresh-pw")

    assert _connect_error(new_url) is None
    assert _connect_error(made.url) is not None


@pytest.mark.parametrize("bad", ["", "1cell", "cell-1", "cell;drop", "a" * 33, "c`x", "c'x"])
def test_names_that_would_need_quoting_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        databases.ensure_database(databases.POSTGRESQL, bad, "user_ok", "pw")
    with pytest.raises(ValueError):
        databases.ensure_database(databases.MARIADB, "db_ok", bad, "pw")


def test_prefix_cleanup_refuses_an_empty_prefix() -> None:
    with pytest.raises(ValueError):
        databases.drop_all("")
