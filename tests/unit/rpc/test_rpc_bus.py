"""The in-process bus behaves as a broker would: JSON payloads, timeouts, remote errors."""

from __future__ import annotations

import datetime as dt
import threading
import time

import pytest

from transcell import exception
from transcell.context import RequestContext
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
