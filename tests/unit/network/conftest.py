"""A migrated network database per test, and a quick way to give it a network."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from transcell.context import RequestContext
from transcell.db import migration
from transcell.db.session import get_engine
from transcell.network import NetworkService


def _service(url: str) -> Iterator[NetworkService]:
    migration.sync(url, "network")
    yield NetworkService(url)
    get_engine(url).dispose()


@pytest.fixture
def service(tmp_path) -> Iterator[NetworkService]:
    """The network service on a fresh SQLite file."""
    yield from _service(f"sqlite:///{tmp_path / 'network.sqlite'}")


@pytest.fixture
def engine_service(db_url: str) -> Iterator[NetworkService]:
    """The network service on every database engine (see tests/conftest.py)."""
    yield from _service(db_url)


@pytest.fixture
def admin() -> RequestContext:
    return RequestContext.admin()


@pytest.fixture
def alice() -> RequestContext:
    return RequestContext(user_id="alice", project_id="proj-a", roles=["member"])


@pytest.fixture
def bob() -> RequestContext:
    return RequestContext(user_id="bob", project_id="proj-b", roles=["member"])


NetworkFactory = Callable[..., tuple[dict, dict]]


@pytest.fixture
def make_network(service: NetworkService, admin: RequestContext) -> NetworkFactory:
    """``make_network(cidr, ctx=admin, **subnet)``: a network with one IPv4 subnet.

    Admin-made networks are shared, so every project can use them.
    """
    def make(cidr: str = "10.9.0.0/29", ctx: RequestContext = admin, **subnet):
        net = service.create_network(ctx, {"name": f"net-{cidr}", "shared": ctx.is_admin})
        sub = service.create_subnet(ctx, {"network_id": net["id"], "cidr": cidr,
                                          "ip_version": 4, **subnet})
        return net, sub
    return make
