"""The call monitor option: checked alike on every bus, never passed to the method, and
used by the compute API's long calls."""

from __future__ import annotations

import time
from typing import Any

import pytest

from transcell import exception
from transcell.compute.rpcapi import ComputeAPI
from transcell.conf import CONF
from transcell.context import RequestContext
from transcell.rpc import bus as rpcbus
from transcell.rpc.inproc import InprocBus
from transcell.rpc.rabbit import ABANDONED_AT, _Endpoint

CTX = RequestContext(user_id="u", project_id="p", roles=["member"])


class Endpoint:
    def echo(self, ctx: RequestContext, **kwargs: Any) -> dict:
        return kwargs


@pytest.fixture
def bus():
    bus = InprocBus("inproc://call-monitor")
    bus.serve("svc", Endpoint())
    yield bus
    bus.stop()


def test_check_call_monitor_timeout():
    assert rpcbus.check_call_monitor_timeout(None, 60) is None
    assert rpcbus.check_call_monitor_timeout(2, 60) == 2.0
    assert rpcbus.check_call_monitor_timeout(30, 1800) == 30.0
    # a monitor no shorter than the timeout changes nothing, so none is asked for
    assert rpcbus.check_call_monitor_timeout(60, 60) is None
    # under two seconds oslo.messaging's server would send no heartbeat at all
    for bad in (0, 1, 1.9, -5):
        with pytest.raises(exception.Invalid):
            rpcbus.check_call_monitor_timeout(bad, 60)


def test_inproc_bus_accepts_the_monitor_and_keeps_it_from_the_method(bus):
    assert bus.call(CTX, "svc", "echo", timeout=10, rpc_call_monitor_timeout=3,
                    value=1) == {"value": 1}
    with pytest.raises(exception.Invalid):
        bus.call(CTX, "svc", "echo", rpc_call_monitor_timeout=1, value=1)


class RecordingBus:
    def __init__(self) -> None:
        self.calls: list[tuple[str, dict]] = []

    def call(self, ctx: RequestContext, topic: str, method: str, **kwargs: Any) -> dict:
        self.calls.append((method, kwargs))
        return {}


def test_long_compute_calls_are_monitored(monkeypatch):
    recorded = RecordingBus()
    monkeypatch.setattr(ComputeAPI, "_bus", lambda self, host: recorded)
    CONF.set_override("call_monitor_timeout", 7, group="rpc")
    CONF.set_override("long_rpc_timeout", 900, group="rpc")
    try:
        api = ComputeAPI()
        api.prep_move_at_source(CTX, "h1", "uuid-1", "snap-1")
        api.finish_move_at_dest(CTX, "h2", {"uuid": "uuid-1"}, "snap-1", "sum", 1, True)
        api.cleanup_move_at_dest(CTX, "h2", "uuid-1")
    finally:
        CONF.clear_override("call_monitor_timeout", group="rpc")
        CONF.clear_override("long_rpc_timeout", group="rpc")
    by_method = dict(recorded.calls)
    for method in ("prep_move_at_source", "finish_move_at_dest"):
        assert by_method[method]["timeout"] == 900
        assert by_method[method]["rpc_call_monitor_timeout"] == 7
    # a short call has nothing to monitor: its own timeout is short already
    assert "rpc_call_monitor_timeout" not in by_method["cleanup_move_at_dest"]


def test_a_rabbit_server_drops_a_call_whose_caller_gave_up():
    ran: list[int] = []

    class Host:
        def step(self, ctx: RequestContext, n: int) -> int:
            ran.append(n)
            return n

    served = _Endpoint("compute.h1", Host())
    now = time.time()
    assert served.invoke({}, CTX.to_dict(), "step", {"n": 1}) == {"result": 1}
    assert served.invoke({ABANDONED_AT: now + 60}, CTX.to_dict(), "step",
                         {"n": 2}) == {"result": 2}
    reply = served.invoke({ABANDONED_AT: now - 1}, CTX.to_dict(), "step", {"n": 3})
    assert reply["error"]["class"] == "RPCTimeout"
    assert ran == [1, 2]
