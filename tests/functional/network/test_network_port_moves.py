"""A move's port calls (check, re-address, restore) answer alike in-process, over the
bus and over HTTP (the distributed layout's conductor), and repeat safely."""

from __future__ import annotations

import itertools
import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from keystoneauth1 import session as ks_session
from keystoneauth1 import token_endpoint

from transcell import exception
from transcell.api.network import make_app
from transcell.context import RequestContext
from transcell.db import migration
from transcell.db.session import get_engine
from transcell.identity import tokens
from transcell.identity.auth import Authenticator
from transcell.identity.store import IdentityStore, bootstrap
from transcell.network import NetworkService
from transcell.network.cells import StaticCells
from transcell.network.http_client import from_session
from transcell.network.rpcapi import NetworkAPI
from transcell.rpc.bus import get_bus
from transcell.wsgi.server import HTTPService, PrefixDispatcher

HOSTS = {"cell1": ["cell1-host1", "cell1-host2"], "cell2": ["cell2-host1"]}
_counter = itertools.count()


@pytest.fixture(scope="module")
def identity(tmp_path_factory) -> IdentityStore:
    return bootstrap(str(tmp_path_factory.mktemp("identity")))


@dataclass
class World:
    service: NetworkService
    admin: RequestContext
    user: RequestContext
    routed: str = ""
    bound: str = ""       # a server port with a cell1 address, bound in cell1
    plain: str = ""       # a port on "private"
    deferred: str = ""    # a port on "routed" that was never bound


def _world(tmp_path, identity: IdentityStore) -> Iterator[World]:
    url = f"sqlite:///{tmp_path / f'network-{next(_counter)}.sqlite'}"
    migration.sync(url, "network")
    service = NetworkService(url, cells=StaticCells(HOSTS))
    admin = RequestContext.admin()
    service.ensure_default_network(admin)
    demo = identity.project_by_name("demo").id
    world = World(service, admin, RequestContext(user_id="u", project_id=demo,
                                                 roles=["member"]))
    world.routed = service.list_networks(admin, {"name": "routed"})[0]["id"]
    private = service.list_networks(admin, {"name": "private"})[0]["id"]
    world.bound = service.create_port(admin, {
        "network_id": world.routed, "device_owner": "compute:nova", "device_id": "vm-1",
        "binding:host_id": "cell1-host1", "project_id": demo})["id"]
    world.plain = service.create_port(world.user, {"network_id": private})["id"]
    world.deferred = service.create_port(world.user, {"network_id": world.routed})["id"]
    yield world
    get_engine(url).dispose()


def _attempt(trace: list, label: str, call: Callable[[], Any]) -> Any:
    try:
        result = call()
    except exception.TranscellError as err:
        trace.append((label, "error", type(err).__name__, err.code, str(err)))
        return None
    trace.append((label, result))
    return result


def _port(world: World, port_id: str) -> dict:
    port = world.service.get_port(world.admin, port_id)
    return {key: port[key] for key in ("id", "mac_address", "fixed_ips", "binding:host_id",
                                       "ip_allocation")}


def scenario(api: Any, world: World) -> list:
    admin, user, trace = world.admin, world.user, []
    ports = [world.bound, world.plain, world.deferred]
    before = _port(world, world.bound)
    trace.append(("before", before))
    _attempt(trace, "check cell2", lambda: api.check_ports_for_host(admin, ports,
                                                                    "cell2-host1"))
    _attempt(trace, "check cell1", lambda: api.check_ports_for_host(admin, ports,
                                                                    "cell1-host2"))
    _attempt(trace, "check nowhere", lambda: api.check_ports_for_host(admin, ports, "nowhere"))
    _attempt(trace, "check missing", lambda: api.check_ports_for_host(admin, ["nope"],
                                                                      "cell2-host1"))
    _attempt(trace, "check bad", lambda: api.check_ports_for_host(admin, "x", "cell2-host1"))
    _attempt(trace, "check as user", lambda: api.check_ports_for_host(user, ports,
                                                                      "cell2-host1"))
    _attempt(trace, "readdress as user", lambda: api.readdress_port(user, world.bound,
                                                                    "cell2-host1"))
    moved = _attempt(trace, "readdress", lambda: api.readdress_port(admin, world.bound,
                                                                    "cell2-host1"))
    _attempt(trace, "readdress again", lambda: api.readdress_port(admin, world.bound,
                                                                  "cell2-host1"))
    trace.append(("moved", _port(world, world.bound)))
    _attempt(trace, "readdress nowhere", lambda: api.readdress_port(admin, world.bound,
                                                                    "nowhere"))
    _attempt(trace, "readdress plain", lambda: api.readdress_port(admin, world.plain,
                                                                  "cell2-host1"))
    _attempt(trace, "restore bad", lambda: api.restore_port_addresses(
        admin, world.bound, [{"ip_address": "10.10.1.2"}]))
    _attempt(trace, "restore foreign subnet", lambda: api.restore_port_addresses(
        admin, world.bound, [{"subnet_id": "nope", "ip_address": "10.10.1.2"}]))
    _attempt(trace, "restore as user", lambda: api.restore_port_addresses(
        user, world.bound, moved["old_fixed_ips"]))
    _attempt(trace, "restore", lambda: api.restore_port_addresses(
        admin, world.bound, moved["old_fixed_ips"]))
    _attempt(trace, "restore again", lambda: api.restore_port_addresses(
        admin, world.bound, moved["old_fixed_ips"]))
    trace.append(("restored", _port(world, world.bound)))
    # re-addressed again, and the old address taken meanwhile: restoring is refused
    again = _attempt(trace, "readdress 2", lambda: api.readdress_port(admin, world.bound,
                                                                      "cell2-host1"))
    world.service.create_port(admin, {"network_id": world.routed, "name": "thief",
                                      "fixed_ips": again["old_fixed_ips"]})
    _attempt(trace, "restore taken", lambda: api.restore_port_addresses(
        admin, world.bound, again["old_fixed_ips"]))
    trace.append(("unchanged", _port(world, world.bound)))
    return trace


_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_MAC = re.compile(r"fa:16:3e(:[0-9a-f]{2}){3}")


def normalized(trace: list) -> str:
    """The trace with ids and MACs named in order of appearance."""
    text = repr(trace)
    names: dict[str, str] = {}
    for pattern, kind in ((_UUID, "id"), (_MAC, "mac")):
        for found in pattern.findall(text) if kind == "id" else [
                m.group(0) for m in pattern.finditer(text)]:
            names.setdefault(found, f"<{kind}{len(names)}>")
    return re.sub(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|"
                  r"fa:16:3e(?::[0-9a-f]{2}){3}", lambda m: names[m.group(0)], text)


def _entry(trace: list, label: str) -> tuple:
    return next(entry for entry in trace if entry[0] == label)


@pytest.fixture
def direct(tmp_path, identity) -> Iterator[tuple[World, Any]]:
    for world in _world(tmp_path, identity):
        yield world, world.service


@pytest.fixture
def over_bus(tmp_path, identity) -> Iterator[tuple[World, Any]]:
    for world in _world(tmp_path, identity):
        bus = get_bus(f"inproc://netmoves-{uuid.uuid4().hex[:8]}")
        bus.serve("network", world.service)
        try:
            yield world, NetworkAPI(bus)
        finally:
            bus.unserve("network")


@pytest.fixture
def over_http(tmp_path, identity) -> Iterator[tuple[World, Any]]:
    for world in _world(tmp_path, identity):
        app = make_app(world.service, Authenticator(identity))
        server = HTTPService(PrefixDispatcher({"/network": app}), "127.0.0.1", 0)
        server.start()
        endpoint = f"http://127.0.0.1:{server.port}/network"
        token, _body = tokens.issue(identity, identity.user_by_name("admin").id,
                                    identity.project_by_name("admin").id)
        session = ks_session.Session(auth=token_endpoint.Token(endpoint, token))
        try:
            yield world, from_session(session, endpoint)
        finally:
            server.stop()


def test_move_calls_answer_alike_and_mean_what_they_say(direct, over_bus, over_http):
    traces = [scenario(api, world) for world, api in (direct, over_bus, over_http)]
    assert normalized(traces[1]) == normalized(traces[0])
    assert normalized(traces[2]) == normalized(traces[0])

    trace = traces[2]
    before = _entry(trace, "before")[1]
    (ip,) = before["fixed_ips"]
    assert ip["ip_address"].startswith("10.10.1.") and before["ip_allocation"] == "immediate"
    plans = _entry(trace, "check cell2")[1]
    assert [p["action"] for p in plans] == ["readdress", "keep", "keep"]
    assert plans[0]["fixed_ips"] == before["fixed_ips"] and plans[0]["segment"]
    assert "cell2-host1" in plans[0]["reason"]
    assert [p["action"] for p in _entry(trace, "check cell1")[1]] == ["keep"] * 3
    assert [p["action"] for p in _entry(trace, "check nowhere")[1]] == [
        "blocked", "keep", "blocked"]
    assert _entry(trace, "check missing")[2:4] == ("PortNotFound", 404)
    assert _entry(trace, "check bad")[3] == 400
    for label in ("check as user", "readdress as user", "restore as user"):
        assert _entry(trace, label)[2:4] == ("PolicyNotAuthorized", 403), label

    moved = _entry(trace, "readdress")[1]
    assert moved["old_fixed_ips"] == before["fixed_ips"]
    assert moved["new_fixed_ips"][0]["ip_address"].startswith("10.10.2.")
    assert _entry(trace, "readdress again")[1] == moved
    after = _entry(trace, "moved")[1]
    assert (after["id"], after["mac_address"], after["binding:host_id"]) == (
        before["id"], before["mac_address"], "cell1-host1")
    assert after["fixed_ips"] == moved["new_fixed_ips"]
    assert _entry(trace, "readdress nowhere")[2:4] == ("HostNotConnectedToAnySegment", 409)
    plain = _entry(trace, "readdress plain")[1]
    assert plain["old_fixed_ips"] == plain["new_fixed_ips"]
    assert _entry(trace, "restore bad")[3] == 400
    assert _entry(trace, "restore foreign subnet")[3] == 400

    assert _entry(trace, "restore")[1]["new_fixed_ips"] == before["fixed_ips"]
    assert _entry(trace, "restore again")[1]["new_fixed_ips"] == before["fixed_ips"]
    assert _entry(trace, "restored")[1] == before
    taken = _entry(trace, "restore taken")
    assert taken[2:4] == ("PortAddressTaken", 409)
    assert before["fixed_ips"][0]["ip_address"] in taken[4]
    assert _entry(trace, "unchanged")[1]["fixed_ips"] == _entry(trace, "readdress 2")[1][
        "new_fixed_ips"]
