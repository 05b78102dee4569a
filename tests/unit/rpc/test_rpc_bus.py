"""The in-process bus behaves as a broker would: JSON payloads, timeouts, remote errors."""

from __future__ import annotations

import datetime as dt
import threading
import time

import pytest

from transcell import exception
from transcell.context import RequestContext
from transcell.rpc import bus as rpcbus
from transcell.rpc.inproc import InprocBus


class Endpoint:
    def __init__(self) -> None:
        self.casts: list[int] = []
        self.cast_done = threading.Event()

    def echo(self, ctx: RequestContext, value):
        return {"value": value, "project": ctx.project_id}

    def slow(self, ctx: RequestContext, seconds: float):
        time.sleep(seconds)
        return "late"

    def missing(self, ctx: RequestContext, uuid: str):
        raise exception.InstanceNotFound(instance_id=uuid)

    def broken(self, ctx: RequestContext):
        raise ZeroDivisionError("bad arithmetic")

    def remember(self, ctx: RequestContext, n: int):
        self.casts.append(n)
        self.cast_done.set()


@pytest.fixture
def bus():
    bus = InprocBus("inproc://test")
    endpoint = Endpoint()
    bus.serve("svc", endpoint)
    bus.endpoint = endpoint
    yield bus
    bus.stop()


CTX = RequestContext(user_id="u", project_id="p", roles=["member"])


def test_call_returns_a_json_copy_and_carries_the_context(bus):
    value = {"a": [1, 2], "b": None}
    result = bus.call(CTX, "svc", "echo", value=value)
    assert result == {"value": value, "project": "p"}
    assert result["value"] is not value


def test_payloads_that_cannot_cross_a_broker_are_refused(bus):
    with pytest.raises(TypeError):
        bus.call(CTX, "svc", "echo", value=dt.datetime.now())


def test_calls_time_out(bus):
    with pytest.raises(exception.RPCTimeout):
        bus.call(CTX, "svc", "slow", seconds=2, timeout=0.2)


def test_transcell_errors_come_back_as_themselves(bus):
    with pytest.raises(exception.InstanceNotFound) as err:
        bus.call(CTX, "svc", "missing", uuid="abc")
    assert err.value.code == 404
    assert "abc" in err.value.message


def test_other_errors_come_back_as_remote_errors(bus):
    with pytest.raises(exception.RemoteError) as err:
        bus.call(CTX, "svc", "broken")
    assert err.value.exc_type == "ZeroDivisionError"
    assert "bad arithmetic" in err.value.traceback


def test_private_and_unknown_methods_are_refused(bus):
    with pytest.raises(exception.Invalid):
        bus.call(CTX, "svc", "_secret")
    with pytest.raises(exception.NotFound):
        bus.call(CTX, "svc", "nope")


def test_no_listener_is_a_timeout_not_a_hang(bus):
    with pytest.raises(exception.RPCTimeout):
        bus.call(CTX, "nobody", "echo", value=1)


def test_cast_does_not_wait(bus):
    bus.cast(CTX, "svc", "remember", n=7)
    assert bus.endpoint.cast_done.wait(5)
    assert bus.endpoint.casts == [7]


# -- versions ------------------------------------------------------------------------


class Versioned:
    RPC_API_VERSION = "1.3"

    def __init__(self, name: str = "v1.3") -> None:
        self.name = name

    def whoami(self, ctx: RequestContext) -> str:
        return self.name

    def args(self, ctx: RequestContext, host: str, server: str, version: str) -> list[str]:
        return [host, server, version]


@pytest.mark.parametrize(("accepted", "sent", "ok"), [
    ("1.3", "1.0", True), ("1.3", "1.3", True), ("1.3", "1.4", False),
    ("1.3", "2.0", False), ("2.0", "1.9", False), ("1.10", "1.9", True),
    ("1.9", "1.10", False),
])
def test_a_server_accepts_its_major_up_to_its_minor(accepted, sent, ok):
    assert rpcbus.accepts(accepted, sent) is ok


@pytest.mark.parametrize("bad", ["1", "1.0.0", "v1.0", "1.x", "01.0", "", None])
def test_versions_must_be_major_dot_minor(bad):
    with pytest.raises(exception.Invalid):
        rpcbus.parse_version(bad)


def test_inproc_applies_the_version_rules(bus):
    bus.serve("versioned", Versioned())
    for sent in ("1.0", "1.3"):
        assert bus.call(CTX, "versioned", "whoami", rpc_version=sent) == "v1.3"
    for sent in ("1.4", "2.0", "0.3"):
        with pytest.raises(exception.RPCVersionUnsupported) as err:
            bus.call(CTX, "versioned", "whoami", rpc_version=sent)
        assert sent in err.value.message
    with pytest.raises(exception.Invalid):
        bus.call(CTX, "versioned", "whoami", rpc_version="1")
    with pytest.raises(exception.Invalid):
        bus.cast(CTX, "versioned", "whoami", rpc_version="one")


def test_an_endpoint_without_a_version_accepts_1_0_only(bus):
    assert bus.call(CTX, "svc", "echo", value=1)["value"] == 1
    assert bus.call(CTX, "svc", "echo", rpc_version="1.0", value=1)["value"] == 1
    with pytest.raises(exception.RPCVersionUnsupported):
        bus.call(CTX, "svc", "echo", rpc_version="1.1", value=1)


def test_the_bus_arguments_leave_a_methods_own_alone(bus):
    bus.serve("versioned", Versioned())
    assert bus.call(CTX, "versioned", "args", host="h", server="s", version="v") == [
        "h", "s", "v"]
    with pytest.raises(exception.NotFound):  # attributes are not methods
        bus.call(CTX, "versioned", "RPC_API_VERSION")


def test_inproc_servers_share_a_topic_and_can_be_addressed(bus):
    bus.serve("shared", Versioned("a"), server="a")
    bus.serve("shared", Versioned("b"), server="b")
    assert {bus.call(CTX, "shared", "whoami") for _ in range(4)} == {"a", "b"}
    assert {bus.call(CTX, "shared", "whoami", rpc_server="b") for _ in range(4)} == {"b"}
    bus.unserve("shared", server="b")
    assert {bus.call(CTX, "shared", "whoami") for _ in range(4)} == {"a"}
    with pytest.raises(exception.RPCTimeout):
        bus.call(CTX, "shared", "whoami", rpc_server="b")
    bus.unserve("shared")
    with pytest.raises(exception.RPCTimeout):
        bus.call(CTX, "shared", "whoami")


def test_each_rpcapi_sends_a_version_its_manager_accepts():
    from transcell import notifications
    from transcell.compute.manager import ComputeManager
    from transcell.compute.rpcapi import ComputeAPI
    from transcell.conductor.manager import ConductorManager
    from transcell.conductor.rpcapi import ConductorAPI
    from transcell.network.rpcapi import NetworkAPI
    from transcell.network.service import NetworkService
    from transcell.scheduler.manager import SchedulerManager
    from transcell.scheduler.rpcapi import SchedulerAPI
    pairs = [(ComputeAPI.VERSION, ComputeManager), (ConductorAPI.VERSION, ConductorManager),
             (SchedulerAPI.VERSION, SchedulerManager), (NetworkAPI.VERSION, NetworkService),
             (notifications.VERSION, notifications.NotificationLog)]
    for sent, manager in pairs:
        assert rpcbus.accepts(manager.RPC_API_VERSION, sent), manager.__name__
