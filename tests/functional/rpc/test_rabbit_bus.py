"""The bus on a real RabbitMQ behaves as the in-process one: same results, same exception
classes, same version rules; several servers share a topic; a vhost's user is confined
to it; a broker restart heals without restarting the services."""

from __future__ import annotations

import datetime as dt
import queue
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from urllib.parse import unquote, urlsplit

import amqp
import kombu
import pytest

from transcell import exception
from transcell.context import RequestContext
from transcell.deploy import rabbit as deploy
from transcell.rpc.bus import get_bus
from transcell.rpc.inproc import InprocBus
from transcell.rpc.rabbit import BrokerRefused, RabbitBus
from transcell.scheduler.rpcapi import SchedulerAPI

pytestmark = [pytest.mark.distributed]

CTX = RequestContext(user_id="u", project_id="p", roles=["member"])
TOPIC = "svc"


class Service:
    RPC_API_VERSION = "1.3"

    def __init__(self, name: str) -> None:
        self.name = name
        self.casts: queue.Queue = queue.Queue()
        self.release = threading.Event()

    def whoami(self, ctx: RequestContext) -> str:
        return self.name

    def echo(self, ctx: RequestContext, value, host: str | None = None, server=None):
        return {"value": value, "project": ctx.project_id, "host": host, "server": server}

    def missing(self, ctx: RequestContext, uuid: str):
        raise exception.InstanceNotFound(instance_id=uuid)

    def broken(self, ctx: RequestContext):
        raise ZeroDivisionError("bad arithmetic")

    def remember(self, ctx: RequestContext, n: int) -> None:
        self.casts.put((self.name, n))

    def block(self, ctx: RequestContext) -> str:
        self.release.wait(30)
        return "late"


def _password(url: str) -> str:
    return unquote(urlsplit(url).password or "")


def test_call_and_cast_cross_between_two_buses(rabbit_url, make_bus):
    served, client = make_bus(rabbit_url, "host-a"), make_bus(rabbit_url, "api")
    service = Service("a")
    served.serve(TOPIC, service)
    value = {"a": [1, 2], "b": None, "text": "ünïcode"}
    # a method's own "host" and "server" arguments are not the bus's
    assert client.call(CTX, TOPIC, "echo", value=value, host="h9", server="s1") == {
        "value": value, "project": "p", "host": "h9", "server": "s1"}
    client.cast(CTX, TOPIC, "remember", n=7)
    assert service.casts.get(timeout=10) == ("a", 7)
    with pytest.raises(TypeError):
        client.call(CTX, TOPIC, "echo", value=dt.datetime.now())


def test_errors_come_back_as_their_own_class(rabbit_url, make_bus):
    served, client = make_bus(rabbit_url, "host-a"), make_bus(rabbit_url, "api")
    served.serve(TOPIC, Service("a"))
    with pytest.raises(exception.InstanceNotFound) as err:
        client.call(CTX, TOPIC, "missing", uuid="abc")
    assert type(err.value) is exception.InstanceNotFound
    assert err.value.code == 404 and "abc" in err.value.message
    assert "InstanceNotFound" in err.value.remote_traceback
    with pytest.raises(exception.RemoteError) as remote:
        client.call(CTX, TOPIC, "broken")
    assert remote.value.exc_type == "ZeroDivisionError"
    assert "bad arithmetic" in remote.value.traceback
    with pytest.raises(exception.Invalid):
        client.call(CTX, TOPIC, "_secret")
    for absent in ("nope", "RPC_API_VERSION"):
        with pytest.raises(exception.NotFound):
            client.call(CTX, TOPIC, absent)


def test_a_late_reply_and_a_missing_listener_are_timeouts(rabbit_url, make_bus):
    served, client = make_bus(rabbit_url, "host-a"), make_bus(rabbit_url, "api")
    service = Service("a")
    served.serve(TOPIC, service)
    try:
        started = time.monotonic()
        with pytest.raises(exception.RPCTimeout):
            client.call(CTX, TOPIC, "block", timeout=1)
        assert time.monotonic() - started < 10
    finally:
        service.release.set()
    with pytest.raises(exception.RPCTimeout):
        client.call(CTX, "nobody", "whoami", timeout=1)


def test_servers_of_one_topic_share_it_and_each_can_be_addressed(rabbit_url, make_bus):
    one, two = make_bus(rabbit_url, "c1"), make_bus(rabbit_url, "c2")
    client = make_bus(rabbit_url, "api")
    first, second = Service("c1"), Service("c2")
    one.serve(TOPIC, first)
    two.serve(TOPIC, second)
    answered = [client.call(CTX, TOPIC, "whoami", timeout=10) for _ in range(20)]
    assert set(answered) == {"c1", "c2"}  # a shared queue hands out in turn
    assert {client.call(CTX, TOPIC, "whoami", rpc_server="c2") for _ in range(6)} == {"c2"}
    client.cast(CTX, TOPIC, "remember", rpc_server="c1", n=1)
    assert first.casts.get(timeout=10) == ("c1", 1)
    assert second.casts.empty()
    one.unserve(TOPIC)
    assert {client.call(CTX, TOPIC, "whoami", timeout=10) for _ in range(6)} == {"c2"}
    with pytest.raises(exception.RPCTimeout):
        client.call(CTX, TOPIC, "whoami", timeout=1, rpc_server="c1")


def test_one_bus_serves_a_topic_as_several_servers(rabbit_url, make_bus):
    """The embedded layout: one process, one bus, several hosts on one topic."""
    bus = make_bus(rabbit_url, "proc")
    bus.serve(TOPIC, Service("h1"), server="h1")
    bus.serve(TOPIC, Service("h2"), server="h2")
    assert bus.call(CTX, TOPIC, "whoami", rpc_server="h1") == "h1"
    assert bus.call(CTX, TOPIC, "whoami", rpc_server="h2") == "h2"
    bus.unserve(TOPIC, server="h1")
    assert {bus.call(CTX, TOPIC, "whoami", timeout=10) for _ in range(4)} == {"h2"}


@pytest.fixture(params=["inproc", "rabbit"])
def bus_pair(request) -> Iterator[tuple]:
    """(serving bus, calling bus) on either transport: the version rules must not
    depend on it."""
    if request.param == "inproc":
        bus = InprocBus(f"inproc://versions-{uuid.uuid4().hex[:8]}")
        yield bus, bus
        bus.stop()
    else:
        vhosts = request.getfixturevalue("vhosts")
        make_bus = request.getfixturevalue("make_bus")
        url = vhosts.create()[2]
        yield make_bus(url, "new"), make_bus(url, "old")


def test_versions_same_major_and_older_minor_only(bus_pair):
    served, client = bus_pair
    served.serve(TOPIC, Service("v1.3"))
    for sent in ("1.0", "1.2", "1.3"):  # an older sender is understood
        assert client.call(CTX, TOPIC, "whoami", rpc_version=sent, timeout=10) == "v1.3"
    for sent in ("1.4", "2.0", "0.3"):  # a newer minor or another major is not
        with pytest.raises(exception.RPCVersionUnsupported) as err:
            client.call(CTX, TOPIC, "whoami", rpc_version=sent, timeout=10)
        assert sent in err.value.message and "whoami" in err.value.message
    with pytest.raises(exception.Invalid):
        client.call(CTX, TOPIC, "whoami", rpc_version="1")


def test_rpcapi_sends_its_version(bus_pair):
    served, client = bus_pair

    class OldScheduler:
        RPC_API_VERSION = "1.0"

        def select_destinations(self, ctx, request_spec, instance_uuid, claim=True):
            return [{"host": "h1"}]

    served.serve("scheduler", OldScheduler())
    api = SchedulerAPI(client)
    assert api.select_destinations(CTX, {}, "uuid") == [{"host": "h1"}]
    api.VERSION = "1.1"
    with pytest.raises(exception.RPCVersionUnsupported):
        api.select_destinations(CTX, {}, "uuid")


def test_a_vhosts_user_is_refused_on_another_vhost(vhosts, make_bus):
    vhost_a, user_a, url_a = vhosts.create()
    vhost_b, _user_b, url_b = vhosts.create()
    assert deploy.user_vhosts(user_a) == [vhost_a]
    crossing = deploy.url_for(vhost_b, user_a, _password(url_a))

    # the broker itself: RabbitMQ answers NOT_ALLOWED (530) to a vhost the user has no
    # rights on, and ACCESS_REFUSED (403) to wrong credentials
    with pytest.raises(amqp.exceptions.NotAllowed, match="refused for user"):
        with kombu.Connection(crossing.replace("rabbit://", "amqp://", 1)) as conn:
            conn.connect()
    wrong = deploy.url_for(vhost_a, user_a, "not-" + _password(url_a))
    with pytest.raises(amqp.exceptions.AccessRefused, match="ACCESS_REFUSED"):
        with kombu.Connection(wrong.replace("rabbit://", "amqp://", 1)) as conn:
            conn.connect()

    # and the bus says so at once instead of retrying or timing out
    intruder = make_bus(crossing, "intruder")
    with pytest.raises(BrokerRefused, match="NOT_ALLOWED"):
        intruder.serve(TOPIC, Service("x"))
    started = time.monotonic()
    with pytest.raises(BrokerRefused):
        intruder.call(CTX, TOPIC, "whoami", timeout=30)
    with pytest.raises(BrokerRefused):
        intruder.cast(CTX, TOPIC, "remember", n=1)
    assert time.monotonic() - started < 10

    # while the rightful users work on their own vhosts
    for url in (url_a, url_b):
        served, client = make_bus(url, "s"), make_bus(url, "c")
        served.serve(TOPIC, Service(url))
        assert client.call(CTX, TOPIC, "whoami", timeout=10) == url


def test_a_send_to_an_unreachable_broker_gives_up_within_its_timeout():
    """Reconnecting is bounded by the timeout (a cast's: rpc_response_timeout), so an API
    worker is not held for ever by a broker that is away."""
    from transcell.conf import CONF
    bus = RabbitBus("rabbit://nobody:secret@127.0.0.1:1/absent", server="x")
    CONF.set_override("rpc_response_timeout", 4, group="rpc")
    try:
        started = time.monotonic()
        with pytest.raises(exception.RPCTimeout):
            bus.cast(CTX, TOPIC, "remember", n=1)
        assert time.monotonic() - started < 15
    finally:
        CONF.clear_override("rpc_response_timeout", group="rpc")
        bus.stop()


def test_ensure_vhost_is_idempotent_and_confines_the_user(vhosts):
    vhost_a, user_a, url_a = vhosts.create()
    vhost_b, _user_b, _url_b = vhosts.create()
    # run again on what exists (as a launcher restarting does), moving the user to another
    # vhost with a new password: it keeps only that vhost, and only the new password
    moved = deploy.ensure_vhost(vhost_b, user_a, "new-password")
    assert deploy.user_vhosts(user_a) == [vhost_b]
    with kombu.Connection(moved.replace("rabbit://", "amqp://", 1)) as conn:
        conn.connect()
    with pytest.raises(amqp.exceptions.AccessRefused):
        with kombu.Connection(deploy.url_for(vhost_b, user_a, _password(url_a))
                              .replace("rabbit://", "amqp://", 1)) as conn:
            conn.connect()
    with pytest.raises(ValueError):
        deploy.ensure_vhost(vhost_a, user_a, "has/slash")
    deploy.delete_vhost(vhost_a)
    deploy.delete_vhost(vhost_a)  # already gone: nothing to do (it checks the list)
    deploy.delete_user(user_a)
    deploy.delete_user(user_a)
    vhosts.made.remove(vhost_a)  # nothing left for the fixture to delete


def test_get_bus_dispatches_rabbit_urls(rabbit_url):
    from transcell.rpc import bus as rpcbus
    bus = get_bus(rabbit_url)
    try:
        assert isinstance(bus, RabbitBus) and get_bus(rabbit_url) is bus
    finally:
        with rpcbus._lock:
            rpcbus._buses.pop(rabbit_url, None)
        bus.stop()


def _rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", *args], check=True, capture_output=True, timeout=120)


@pytest.mark.slow
def test_calls_work_again_after_a_broker_restart(rabbit_url, make_bus):
    """Services keep running through ``stop_app``/``start_app``: their connections come
    back on their own and a call succeeds again without restarting anything."""
    served, client = make_bus(rabbit_url, "host-a"), make_bus(rabbit_url, "api")
    service = Service("a")
    served.serve(TOPIC, service)
    assert client.call(CTX, TOPIC, "whoami", timeout=10) == "a"
    try:
        _rabbitmqctl("stop_app")
    finally:
        _rabbitmqctl("start_app")
    deadline = time.monotonic() + 60
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            assert client.call(CTX, TOPIC, "whoami", timeout=3) == "a"
            break
        except Exception as exc:  # reconnecting: the listener may not have re-declared yet
            last = exc
    else:
        pytest.fail(f"no call succeeded within 60 s of the broker's restart: {last!r}")
    client.cast(CTX, TOPIC, "remember", n=3)
    assert service.casts.get(timeout=10) == ("a", 3)
