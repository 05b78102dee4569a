"""Throw-away RabbitMQ vhosts with users of their own, and buses on them.

Every test gets a vhost and a user named ``transcell_t_<random>`` that it alone uses,
made with the launcher's own helpers (``transcell.deploy.rabbit``) and deleted after
it, so tests can run beside each other and beside real services on the same broker.
RabbitMQ not answering skips these tests, or fails them under CI=true. The broker is
managed with the local ``rabbitmqctl`` and reached at 127.0.0.1:5672, or at
``TRANSCELL_TEST_RABBIT_HOST``/``_PORT``.
"""

from __future__ import annotations

import functools
import os
import secrets
import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

import dbfixtures
import pytest

from transcell.deploy import rabbit as deploy
from transcell.rpc.rabbit import RabbitBus

PREFIX = "transcell_t_"
HOST = os.environ.get("TRANSCELL_TEST_RABBIT_HOST", deploy.HOST)
PORT = int(os.environ.get("TRANSCELL_TEST_RABBIT_PORT", str(deploy.PORT)))


@functools.cache
def unreachable_reason() -> str | None:
    """None when the broker takes connections and ``rabbitmqctl`` works, else why not."""
    try:
        with socket.create_connection((HOST, PORT), timeout=3):
            pass
    except OSError as exc:
        return f"RabbitMQ at {HOST}:{PORT} is not reachable: {exc}"
    try:
        deploy.list_vhosts()
    except (OSError, deploy.RabbitCtlError, ValueError) as exc:
        return f"rabbitmqctl cannot manage the broker at {HOST}:{PORT}: {exc}"
    return None


def require_rabbit() -> None:
    reason = unreachable_reason()
    if reason is None:
        return
    if dbfixtures.in_ci():
        pytest.fail(f"CI=true requires RabbitMQ; {reason}", pytrace=False)
    pytest.skip(reason)


@dataclass
class Vhosts:
    """Creates uniquely named vhost/user pairs and deletes every one afterwards."""

    made: list[str] = field(default_factory=list)

    def create(self) -> tuple[str, str, str]:
        """(vhost, user, url) of a fresh vhost whose user may use nothing else."""
        name = PREFIX + uuid.uuid4().hex[:10]
        self.made.append(name)
        password = secrets.token_urlsafe(12)
        deploy.ensure_vhost(name, name, password)
        return name, name, deploy.url_for(name, name, password, HOST, PORT)

    def delete_all(self) -> None:
        for name in reversed(self.made):
            deploy.delete_vhost(name)
            deploy.delete_user(name)
        self.made.clear()


@pytest.fixture
def vhosts() -> Iterator[Vhosts]:
    require_rabbit()
    made = Vhosts()
    try:
        yield made
    finally:
        made.delete_all()


@pytest.fixture
def rabbit_url(vhosts: Vhosts) -> str:
    return vhosts.create()[2]


@pytest.fixture
def make_bus(vhosts: Vhosts) -> Iterator:
    """``make_bus(url, server)``: a RabbitBus stopped when the test ends (before its
    vhost is deleted, since fixtures tear down in reverse)."""
    buses: list[RabbitBus] = []

    def make(url: str, server: str) -> RabbitBus:
        bus = RabbitBus(url, server=server)
        buses.append(bus)
        return bus

    yield make
    for bus in buses:
        bus.stop()
