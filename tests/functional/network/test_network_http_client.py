"""The network service over HTTP (keystoneauth, waitress) answers as it does over the bus.

One scenario runs twice, each time against a fresh network database: once
through ``NetworkAPI`` on an in-process bus, once through ``HTTPNetworkAPI``
and the real network API server with a builtin-identity token. The two traces
(results and errors, with generated ids and MAC addresses renamed in order of
appearance) must be equal, and the HTTP trace must say what the scenario means.
"""

from __future__ import annotations

import itertools
import re
import threading
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
from transcell.network import exceptions as net_exc
from transcell.network.http_client import HTTPNetworkAPI, NetworkServiceUnavailable, from_session
from transcell.network.rpcapi import NetworkAPI
from transcell.rpc.bus import get_bus
from transcell.wsgi.server import HTTPService, PrefixDispatcher

_counter = itertools.count()


@pytest.fixture(scope="module")
def identity(tmp_path_factory) -> IdentityStore:
    return bootstrap(str(tmp_path_factory.mktemp("identity")))


@dataclass
class World:
    """One network database, the projects of the scenario and its fixed resources."""

    service: NetworkService
    user: RequestContext        # the server's owner, as compute passes it on
    other: RequestContext       # another project
    admin: RequestContext
    net_a: str = ""             # the user's network, with a subnet
    net_b: str = ""             # the other project's private network
    mine: str = ""              # the user's own free port on net_a
    theirs: str = ""            # the other project's port on net_b


def _world(tmp_path, identity: IdentityStore) -> Iterator[World]:
    url = f"sqlite:///{tmp_path / f'network-{next(_counter)}.sqlite'}"
    migration.sync(url, "network")
    service = NetworkService(url)
    admin = RequestContext.admin()
    service.ensure_default_network(admin)
    demo, alt = identity.project_by_name("demo").id, identity.project_by_name("alt").id
    world = World(service, RequestContext(user_id="u", project_id=demo, roles=["member"]),
                  RequestContext(user_id="o", project_id=alt, roles=["member"]), admin)
    world.net_a = service.create_network(world.user, {"name": "net-a"})["id"]
    service.create_subnet(world.user, {"network_id": world.net_a, "cidr": "192.168.10.0/24",
                                       "ip_version": 4})
    world.net_b = service.create_network(world.other, {"name": "net-b"})["id"]
    service.create_subnet(world.other, {"network_id": world.net_b, "cidr": "192.168.20.0/24",
                                        "ip_version": 4})
    world.mine = service.create_port(world.user, {"network_id": world.net_a,
                                                  "name": "mine"})["id"]
    world.theirs = service.create_port(world.other, {"network_id": world.net_b})["id"]
    yield world
    get_engine(url).dispose()


@pytest.fixture
def rpc_world(tmp_path, identity) -> Iterator[tuple[World, NetworkAPI]]:
    for world in _world(tmp_path, identity):
        bus = get_bus(f"inproc://nethttp-{uuid.uuid4().hex[:8]}")
        bus.serve("network", world.service)
        try:
            yield world, NetworkAPI(bus)
        finally:
            bus.unserve("network")


def _token(store: IdentityStore, user: str, project: str) -> str:
    token, _body = tokens.issue(store, store.user_by_name(user).id,
                                store.project_by_name(project).id)
    return token


def _session(endpoint: str, token: str) -> ks_session.Session:
    return ks_session.Session(auth=token_endpoint.Token(endpoint, token))


@pytest.fixture
def http_world(tmp_path, identity) -> Iterator[tuple[World, HTTPNetworkAPI, str]]:
    for world in _world(tmp_path, identity):
        app = make_app(world.service, Authenticator(identity))
        server = HTTPService(PrefixDispatcher({"/network": app}), "127.0.0.1", 0)
        server.start()
        endpoint = f"http://127.0.0.1:{server.port}/network"
        try:
            yield world, from_session(_session(endpoint, _token(identity, "admin", "admin")),
                                      endpoint), endpoint
        finally:
            server.stop()


# --- the scenario ---------------------------------------------------------------

def _attempt(trace: list, label: str, call: Callable[[], Any]) -> Any:
    try:
        result = call()
    except exception.TranscellError as err:
        trace.append((label, "error", type(err).__name__, err.code, str(err)))
        return None
    trace.append((label, result))
    return result


def _sorted(ports: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Ports in an order of their own: created in the same second, two lists
    order them by a random id."""
    return sorted(ports, key=lambda p: (p["device_id"], p["name"],
                                        [ip["ip_address"] for ip in p["fixed_ips"]]))


def _port_state(api: Any, world: World, port_id: str) -> dict[str, Any]:
    (port,) = api.list_ports(world.admin, id=port_id)
    return {key: port[key] for key in ("device_id", "device_owner", "binding:host_id",
                                       "status", "transcell:created_for_instance",
                                       "transcell:vif_tag", "transcell:vif_index")}


def scenario(api: Any, world: World) -> list:
    user, admin, trace = world.user, world.admin, []
    inst1, inst2, inst3, inst4 = (f"00000000-0000-0000-0000-00000000000{i}"
                                  for i in range(1, 5))
    project = user.project_id
    # a new port on a network and the user's own port, bound to host1
    vifs = _attempt(trace, "allocate", lambda: api.allocate_for_instance(
        user, inst1, project, [{"uuid": world.net_a, "tag": "first"},
                               {"port": world.mine, "tag": "second"}], "host1"))
    made = vifs[0]["id"]
    trace.append(("made", _port_state(api, world, made)))
    trace.append(("mine", _port_state(api, world, world.mine)))
    # refused: another project's port (the port made before it is rolled back),
    # a port in use, an invisible network, a bad request
    _attempt(trace, "their port", lambda: api.allocate_for_instance(
        user, inst2, project, [{"uuid": world.net_a}, {"port": world.theirs}], "host1"))
    _attempt(trace, "in use", lambda: api.allocate_for_instance(
        user, inst2, project, [{"port": world.mine}], "host1"))
    _attempt(trace, "their network", lambda: api.allocate_for_instance(
        user, inst2, project, [{"uuid": world.net_b}], "host1"))
    _attempt(trace, "bad format", lambda: api.allocate_for_instance(
        user, inst2, project, [{"network": world.net_a}], "host1"))
    _attempt(trace, "after refusals", lambda: api.list_ports(admin, device_id=inst2))
    _attempt(trace, "auto", lambda: api.allocate_for_instance(user, inst3, project, "auto",
                                                              "host1"))
    _attempt(trace, "none", lambda: api.allocate_for_instance(user, inst3, project, "none",
                                                              "host1"))
    _attempt(trace, "unbound", lambda: api.allocate_for_instance(
        user, inst4, project, [{"uuid": world.net_a, "fixed_ip": "192.168.10.50"}], None))
    _attempt(trace, "get net", lambda: api.get_network(user, world.net_a))
    _attempt(trace, "get their net", lambda: api.get_network(user, world.net_b))
    _attempt(trace, "user's ports",
             lambda: _sorted(api.list_ports(user, device_id=[inst1, inst3])))
    _attempt(trace, "user sees no other", lambda: api.list_ports(user, id=world.theirs))
    _attempt(trace, "empty filter", lambda: api.list_ports(admin, device_id=[]))
    # a move: inactive binding on host2, activate it, drop host1's
    for port_id in (made, world.mine):
        _attempt(trace, "bind host2", lambda p=port_id: api.create_binding(admin, p, "host2"))
        _attempt(trace, "bind twice", lambda p=port_id: api.create_binding(admin, p, "host2"))
        _attempt(trace, "activate", lambda p=port_id: api.activate_binding(admin, p, "host2"))
        _attempt(trace, "again", lambda p=port_id: api.activate_binding(admin, p, "host2"))
        _attempt(trace, "both", lambda p=port_id: api.list_bindings(admin, p))
        _attempt(trace, "drop host1", lambda p=port_id: api.delete_binding(admin, p, "host1"))
        _attempt(trace, "gone", lambda p=port_id: api.delete_binding(admin, p, "host1"))
        _attempt(trace, "left", lambda p=port_id: api.list_bindings(admin, p))
    (unbound,) = api.list_ports(admin, device_id=inst4)
    _attempt(trace, "inactive first binding",
             lambda: api.create_binding(admin, unbound["id"], "host3"))
    for label, call in (("member lists", lambda: api.list_bindings(user, made)),
                        ("member binds", lambda: api.create_binding(user, made, "host9")),
                        ("member activates", lambda: api.activate_binding(user, made, "x")),
                        ("member deletes", lambda: api.delete_binding(user, made, "host2"))):
        _attempt(trace, label, call)
    # release: the made port is deleted, the user's kept, unplugged and free again
    _attempt(trace, "deallocate", lambda: api.deallocate_for_instance(user, inst1))
    _attempt(trace, "made after", lambda: api.list_ports(admin, id=made))
    trace.append(("mine after", _port_state(api, world, world.mine)))
    _attempt(trace, "mine bindings", lambda: api.list_bindings(admin, world.mine))
    # vifs given back override what the ports remember
    vifs3 = api.list_ports(admin, device_id=inst3)
    _attempt(trace, "deallocate kept", lambda: api.deallocate_for_instance(
        user, inst3, [{"id": vifs3[0]["id"], "preexisting": True}]))
    trace.append(("auto kept", _port_state(api, world, vifs3[0]["id"])))
    _attempt(trace, "deallocate unbound", lambda: api.deallocate_for_instance(admin, inst4))
    _attempt(trace, "all left", lambda: [(p["name"], p["device_id"])
                                         for p in _sorted(api.list_ports(admin))])
    return trace


_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_MAC = re.compile(r"fa:16:3e(:[0-9a-f]{2}){3}")
_TAP = re.compile(r"tap[0-9a-f-]{11}")
_TIMES = ("created_at", "updated_at")


def normalized(trace: list, world: World) -> Any:
    """The trace with generated names replaced by their order of appearance."""
    names: dict[str, str] = {world.net_a: "<net-a>", world.net_b: "<net-b>",
                             world.mine: "<mine>", world.theirs: "<theirs>"}

    def rename(match: re.Match, kind: str) -> str:
        text = match.group(0)
        if text.startswith("00000000-"):
            return text
        return names.setdefault(text, f"<{kind}{len(names)}>")

    def walk(value: Any) -> Any:
        if isinstance(value, dict):
            return {key: walk(item) for key, item in value.items() if key not in _TIMES}
        if isinstance(value, tuple):
            return tuple(walk(item) for item in value)
        if isinstance(value, list):
            return [walk(item) for item in value]
        if isinstance(value, str):
            value = _UUID.sub(lambda m: rename(m, "id"), value)
            value = _MAC.sub(lambda m: rename(m, "mac"), value)
            return _TAP.sub(lambda m: rename(m, "tap"), value)
        return value

    return walk(trace)


def _entry(trace: list, label: str) -> tuple:
    (found,) = [item for item in trace if item[0] == label]
    return found


def test_http_client_answers_as_the_bus_does(rpc_world, http_world):
    rpc_trace = scenario(rpc_world[1], rpc_world[0])
    http_trace = scenario(http_world[1], http_world[0])
    expected = normalized(rpc_trace, rpc_world[0])
    got = normalized(http_trace, http_world[0])
    for want, have in zip(expected, got, strict=True):
        assert have == want, f"step {want[0]!r} differs"
    # ...and the (shared) trace means what the scenario says
    made, mine = _entry(got, "allocate")[1]
    assert made["network_name"] == "net-a" and made["tag"] == "first"
    assert made["preexisting"] is False and made["host"] == "host1" and made["active"]
    assert made["fixed_ips"][0]["version"] == 4 and made["vif_type"] == "ovs"
    assert mine["id"] == "<mine>" and mine["preexisting"] is True and mine["tag"] == "second"
    assert _entry(got, "made")[1]["transcell:created_for_instance"] is True
    assert _entry(got, "mine")[1]["transcell:vif_index"] == 1
    assert _entry(got, "their port")[1:] == (
        "error", "PortNotFound", 404, "Port <theirs> could not be found.")
    assert _entry(got, "in use")[1:3] == ("error", "PortInUse")
    assert _entry(got, "their network")[1:3] == ("error", "NetworkNotFound")
    assert _entry(got, "bad format")[1:3] == ("error", "Invalid")
    assert _entry(got, "after refusals")[1] == []
    assert _entry(got, "auto")[1][0]["network_name"] == "private"
    assert _entry(got, "get their net")[1:3] == ("error", "NetworkNotFound")
    assert [e[1]["status"] for e in got if e[0] == "bind host2"] == ["INACTIVE", "INACTIVE"]
    assert {e[2] for e in got if e[0] == "bind twice"} == {"PortBindingAlreadyExists"}
    assert {e[2] for e in got if e[0] == "again"} == {"PortBindingAlreadyActive"}
    assert {e[2] for e in got if e[0] == "gone"} == {"PortBindingNotFound"}
    assert [{b["host"]: b["status"] for b in e[1]} for e in got if e[0] == "both"] == [
        {"host1": "INACTIVE", "host2": "ACTIVE"}] * 2
    assert [[b["host"] for b in e[1]] for e in got if e[0] == "left"] == [["host2"]] * 2
    assert _entry(got, "inactive first binding")[1]["status"] == "INACTIVE"
    assert {_entry(got, label)[2] for label in ("member lists", "member binds",
                                                "member activates", "member deletes")} == {
        "PolicyNotAuthorized"}
    assert _entry(got, "made after")[1] == []
    assert _entry(got, "mine after")[1] == {
        "device_id": "", "device_owner": "", "binding:host_id": "", "status": "DOWN",
        "transcell:created_for_instance": False, "transcell:vif_tag": None,
        "transcell:vif_index": 0}
    assert _entry(got, "mine bindings")[1] == []
    assert _entry(got, "auto kept")[1]["device_id"] == ""
    assert ("mine", "") in _entry(got, "all left")[1]


def test_member_session_is_refused_binding_operations(http_world, identity):
    world, admin_api, endpoint = http_world
    vifs = admin_api.allocate_for_instance(world.user, "vm-m", world.user.project_id,
                                           [{"uuid": world.net_a}], "host1")
    port_id = vifs[0]["id"]
    member = HTTPNetworkAPI(_session(endpoint, _token(identity, "demo", "demo")), endpoint)
    calls = {
        "get_port_binding": lambda: member.list_bindings(world.admin, port_id),
        "create_port_binding": lambda: member.create_binding(world.admin, port_id, "host2"),
        "activate": lambda: member.activate_binding(world.admin, port_id, "host1"),
        "delete_port_binding": lambda: member.delete_binding(world.admin, port_id, "host1"),
    }
    for action, call in calls.items():
        with pytest.raises(net_exc.PolicyNotAuthorized) as caught:
            call()
        assert caught.value.code == 403
        assert str(caught.value) == f"rule:{action} is disallowed by policy"
    # the member may not create compute ports either, nor mark them as made for a server
    with pytest.raises(net_exc.PolicyNotAuthorized):
        member.allocate_for_instance(world.user, "vm-n", world.user.project_id,
                                     [{"uuid": world.net_a}], None)
    assert [b["status"] for b in admin_api.list_bindings(world.admin, port_id)] == ["ACTIVE"]
    assert admin_api.list_ports(world.admin, device_id="vm-n") == []
    # transcell-vif's attributes: neither settable nor shown to a member
    with pytest.raises(net_exc.PolicyNotAuthorized,
                       match="create_port:transcell:created_for_instance"):
        member._call(world.user, "POST", "/v2.0/ports", {"port": {
            "network_id": world.net_a, "transcell:created_for_instance": True}})
    own = member._call(world.user, "GET", f"/v2.0/ports/{world.mine}")["port"]
    assert own["id"] == world.mine and not [key for key in own if key.startswith("transcell:")]
    with pytest.raises(net_exc.PolicyNotAuthorized, match="update_port:transcell:vif_tag"):
        member._call(world.user, "PUT", f"/v2.0/ports/{world.mine}",
                     {"port": {"transcell:vif_tag": "x"}})


def test_a_stale_revision_is_refused_and_attach_rereads(http_world):
    """Two servers racing for one free port: the loser sees PortInUse, not a silent steal."""
    world, api, endpoint = http_world
    port = api.list_ports(world.admin, id=world.mine)[0]
    stale = f"revision_number={port['revision_number']}"
    api._call(world.admin, "PUT", f"/v2.0/ports/{world.mine}", {"port": {"name": "renamed"}},
              headers={"If-Match": stale})
    with pytest.raises(net_exc.RevisionNumberConstraintFailed) as caught:
        api._call(world.admin, "PUT", f"/v2.0/ports/{world.mine}",
                  {"port": {"device_id": "thief"}}, headers={"If-Match": stale})
    assert caught.value.code == 412
    assert api.list_ports(world.admin, id=world.mine)[0]["device_id"] == ""

    # a rival attaches between this client's read and its write
    original = api._get_port
    raced = []

    def read_then_rival(ctx, port_id):
        found = original(ctx, port_id)
        if not raced:
            raced.append(port_id)
            world.service.update_port(world.admin, port_id, {"device_id": "rival"})
        return found

    api._get_port = read_then_rival  # type: ignore[method-assign]
    with pytest.raises(net_exc.PortInUse, match="attached device rival"):
        api.allocate_for_instance(world.user, "vm-late", world.user.project_id,
                                  [{"port": world.mine}], "host1")
    assert api.list_ports(world.admin, id=world.mine)[0]["device_id"] == "rival"


def test_unreachable_network_api_is_a_transcell_error():
    api = HTTPNetworkAPI(_session("http://127.0.0.1:9/network", "t"),
                         "http://127.0.0.1:9/network")
    with pytest.raises(NetworkServiceUnavailable):
        api.get_network(RequestContext.admin(), "x")


def test_concurrent_attaches_of_one_port_have_one_winner(http_world):
    world, api, _endpoint = http_world
    servers = [f"vm-race-{i}" for i in range(6)]
    barrier = threading.Barrier(len(servers))
    outcomes: dict[str, str] = {}

    def attach(server: str) -> None:
        barrier.wait()
        try:
            api.allocate_for_instance(world.user, server, world.user.project_id,
                                      [{"port": world.mine}], "host1")
            outcomes[server] = "attached"
        except net_exc.PortInUse:
            outcomes[server] = "in use"

    threads = [threading.Thread(target=attach, args=(server,)) for server in servers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(outcomes.values()) == ["attached"] + ["in use"] * (len(servers) - 1)
    (winner,) = [server for server, outcome in outcomes.items() if outcome == "attached"]
    (port,) = api.list_ports(world.admin, id=world.mine)
    assert port["device_id"] == winner and port["binding:host_id"] == "host1"


def test_endpoint_from_the_service_catalog(tmp_path, identity):
    """A password session finds the network API in its token's catalog, as Nova does."""
    from keystoneauth1.identity import v3

    from transcell.api.identity import make_app as identity_app
    from transcell.identity.catalog import default_catalog

    for world in _world(tmp_path, identity):
        server = HTTPService(PrefixDispatcher({
            "/network": make_app(world.service, Authenticator(identity)),
            "/identity": identity_app(identity, default_catalog)}), "127.0.0.1", 0)
        server.start()
        try:
            base = f"http://127.0.0.1:{server.port}"
            auth = v3.Password(auth_url=f"{base}/identity/v3", username="admin",
                               password=identity.user_by_name("admin").password,
                               project_name="admin", user_domain_name="Default",
                               project_domain_name="Default")
            api = from_session(ks_session.Session(auth=auth))
            assert api.endpoint == f"{base}/network"
            assert api.get_network(world.user, world.net_a)["name"] == "net-a"
        finally:
            server.stop()
