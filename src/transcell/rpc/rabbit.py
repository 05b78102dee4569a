"""The bus on RabbitMQ, through oslo.messaging.

Messages keep the in-process bus's shape: a served method's result or exception travels
back inside a JSON reply (``{"result": ...}`` or ``{"error": ...}``, see ``bus.handle``),
so a caller gets the same transcell exception class on either transport. On the wire
every transcell method is the oslo.messaging method ``invoke`` with arguments ``ctx``
(transcell's request context: oslo.messaging's own context carries driver keys of its
own, so it holds only ``ABANDONED_AT`` of a monitored call), ``name`` (the transcell
method), ``args`` (its keyword arguments) and ``cast``; oslo.messaging itself checks the
message's version against the endpoint's target version.

Queues are oslo.messaging's: every server of a topic consumes the shared ``<topic>``
queue (load-balanced) and its own ``<topic>.<server>`` queue, so a call may name one
server. Exchanges live in the bus's vhost, one per deployment unit (a cell, the API
level), and are named ``transcell``.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from typing import Any

from oslo_config import cfg

from transcell import exception, tally
from transcell.context import RequestContext
from transcell.rpc import bus as rpcbus

LOG = logging.getLogger(__name__)

EXCHANGE = "transcell"
INVOKE = "invoke"

ABANDONED_AT = "transcell_abandoned_at"
"""Key in oslo.messaging's context of a monitored call: the caller's wall-clock time after
which it has surely given up (twice its monitor timeout after sending, the second half
left for the hosts' clocks to differ). A server that takes the message only later (it
was down, or its threads were all busy) drops it instead of running a step the caller
already undid. Servers that do not know the key ignore it."""

# Reconnect within seconds once the broker is back, instead of oslo.messaging's backoff
# to 30 s: a restarted broker should not leave services deaf for half a minute.
RECONNECT_INTERVAL_MAX = 5

_UNSUPPORTED_MODULE = "oslo_messaging.rpc.dispatcher"


class BrokerRefused(exception.TranscellError):
    """The broker turned this bus's credentials away: a wrong password (ACCESS_REFUSED)
    or a user without rights on the vhost (NOT_ALLOWED). Retrying cannot help, so it is
    raised at once instead of waiting out a timeout."""

    code = 503
    msg_fmt = "RabbitMQ refused %(url)s: %(reason)s"


def _retries_within(seconds: float) -> int:
    """How many reconnects oslo.messaging fits into ``seconds``: before each it waits 1, 3,
    5, 5... s (rabbit_retry_interval 1, backoff 2, at most RECONNECT_INTERVAL_MAX) plus
    kombu_reconnect_delay, 1 s. Zero still makes the one attempt."""
    retries, spent = 0, 0.0
    while True:
        wait = min(1 + 2 * retries, RECONNECT_INTERVAL_MAX) + 1
        if spent + wait > seconds:
            return retries
        spent += wait
        retries += 1


def _unreachable() -> tuple[type[BaseException], ...]:
    """What a send raises once its bounded reconnecting gave up."""
    import oslo_messaging
    from kombu import exceptions as kombu_exc
    return (oslo_messaging.MessageDeliveryFailure, kombu_exc.OperationalError)


def _refusals() -> tuple[type[BaseException], ...]:
    from amqp import exceptions as amqp_exc
    return (amqp_exc.AccessRefused, amqp_exc.NotAllowed)


def private_conf() -> cfg.ConfigOpts:
    """A ConfigOpts of the bus's own, never transcell's CONF.

    oslo.messaging registers some sixty options (its ``[DEFAULT] transport_url`` and
    ``rpc_response_timeout``, ``[oslo_messaging_rabbit]``...) on whatever ConfigOpts it is
    given. On transcell's CONF they would appear in ``transcell.conf`` samples and help
    as a second, ignored ``transport_url`` next to ``[rpc] transport_url``; and one
    process holds a bus per cell, each needing its own URL. The URL carries everything
    a deployment sets (credentials, vhost, ``?ssl=1`` and other driver options as query
    parameters, which oslo.messaging reads from the URL), and timeouts come from
    transcell's ``[rpc]`` options per call.
    """
    from oslo_messaging import conffixture
    conf = cfg.ConfigOpts()
    # Constructing the fixture registers every option oslo.messaging reads (some of them,
    # tracing and metrics, it otherwise registers only on oslo.config's global CONF); the
    # fixture is never set up, so nothing else of it applies.
    conffixture.ConfFixture(conf)
    conf.set_override("rabbit_interval_max", RECONNECT_INTERVAL_MAX,
                      group="oslo_messaging_rabbit")
    # Topic queues outlive a broker restart: a message sent in the seconds after the
    # broker is back, before its consumer has reconnected, waits in the queue instead of
    # being dropped for want of one.
    conf.set_override("amqp_durable_queues", True, group="oslo_messaging_rabbit")
    return conf


class _Endpoint:
    """What oslo.messaging dispatches to: one method that runs the transcell method and
    answers by value, and a target whose version oslo.messaging checks first."""

    def __init__(self, topic: str, endpoint: object) -> None:
        import oslo_messaging
        self.topic = topic
        self.endpoint = endpoint
        self.target = oslo_messaging.Target(version=rpcbus.accepted_version(endpoint))

    def invoke(self, _ctxt: dict, ctx: dict, name: str, args: dict,
               cast: bool = False) -> dict[str, Any]:
        abandoned_at = _ctxt.get(ABANDONED_AT) if isinstance(_ctxt, dict) else None
        if isinstance(abandoned_at, int | float) and time.time() > abandoned_at:
            LOG.warning("Dropped call %s.%s: it arrived %.0f s after its caller gave up",
                        self.topic, name, time.time() - abandoned_at)
            return {"error": rpcbus.encode_exception(
                exception.RPCTimeout(topic=self.topic, method=name))}
        reply = rpcbus.handle(self.endpoint, name, ctx, args)
        if cast and "error" in reply:
            LOG.error("cast %s.%s failed: %s", self.topic, name, reply["error"]["traceback"])
        return reply


class RabbitBus:
    """A bus on one RabbitMQ vhost: ``RabbitBus("rabbit://user:pass@host:5672/vhost")``.

    ``server`` is the name this bus's listeners go by (``<topic>.<server>`` queues), by
    default this machine's host name as Nova's ``CONF.host``; ``serve(..., server=)``
    overrides it per listener, e.g. a compute host's name. One transport (one pool of
    connections) serves every listener and every call of the bus.

    When the broker goes away, listeners reconnect on their own (waits growing to
    RECONNECT_INTERVAL_MAX) and re-declare their queues; a call or cast reconnects only
    as long as its timeout allows, then raises RPCTimeout. One exception: the first call
    a bus ever makes sets up its reply queue, which oslo.messaging retries without limit,
    so that call waits for the broker. serve() too waits for the broker.
    """

    def __init__(self, url: str, server: str | None = None,
                 conf: cfg.ConfigOpts | None = None) -> None:
        import oslo_messaging
        self.url = url
        self.server = server or socket.gethostname()
        self._conf = conf if conf is not None else private_conf()
        self._transport = oslo_messaging.get_rpc_transport(
            self._conf, url=url, allowed_remote_exmods=[_UNSUPPORTED_MODULE])
        self._client = oslo_messaging.get_rpc_client(
            self._transport, oslo_messaging.Target(exchange=EXCHANGE, topic=EXCHANGE))
        self._servers: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()
        self._stopped = False

    # -- serving ---------------------------------------------------------------------

    def serve(self, topic: str, endpoint: object, server: str | None = None) -> None:
        import oslo_messaging
        name = server or self.server
        target = oslo_messaging.Target(exchange=EXCHANGE, topic=topic, server=name)
        # The threading executor: a pool of OS threads runs the messages. oslo.messaging
        # picks it by itself unless eventlet monkey-patched this process, and warns that
        # naming it is deprecated, so it is checked rather than passed.
        listener = oslo_messaging.get_rpc_server(
            self._transport, target, [_Endpoint(topic, endpoint)],
            access_policy=oslo_messaging.DefaultRPCAccessPolicy)
        if listener.executor_type != "threading":
            raise exception.Invalid(f"oslo.messaging chose the {listener.executor_type} "
                                    "executor; transcell's services need real threads")
        with self._lock:
            if self._stopped:
                raise exception.Invalid(f"the bus of {self._safe_url()} is stopped")
            old = self._servers.pop((topic, name), None)
            self._servers[(topic, name)] = listener
        if old is not None:
            self._halt([old])
        # start() declares the queues before returning: a message sent after serve()
        # returns is never dropped for want of a queue.
        try:
            listener.start()
        except _refusals() as exc:
            with self._lock:
                if self._servers.get((topic, name)) is listener:
                    del self._servers[(topic, name)]
            raise BrokerRefused(url=self._safe_url(), reason=str(exc)) from exc

    def unserve(self, topic: str, server: str | None = None) -> None:
        with self._lock:
            keys = [key for key in self._servers
                    if key[0] == topic and (server is None or key[1] == server)]
            listeners = [self._servers.pop(key) for key in keys]
        self._halt(listeners)

    @staticmethod
    def _halt(listeners: list[Any]) -> None:
        """Stop every listener first, then wait for all: their consumers wind down
        together instead of one after another."""
        for listener in listeners:
            listener.stop()
        for listener in listeners:
            listener.wait()

    # -- sending ---------------------------------------------------------------------

    def _prepare(self, topic: str, version: str, server: str | None,
                 timeout: float | None = None, call_monitor_timeout: float | None = None
                 ) -> Any:
        from transcell.conf import CONF
        rpcbus.parse_version(version)
        # bounded reconnecting: with the broker away, a send fails within the call's
        # timeout (a cast's: rpc_response_timeout) instead of retrying for ever
        retry = _retries_within(timeout or CONF.rpc.rpc_response_timeout)
        return self._client.prepare(topic=topic, server=server, version=version,
                                    timeout=timeout, call_monitor_timeout=call_monitor_timeout,
                                    retry=retry)

    def call(self, ctx: RequestContext, topic: str, method: str,
             timeout: float | None = None, *, rpc_version: str = rpcbus.DEFAULT_VERSION,
             rpc_server: str | None = None, rpc_call_monitor_timeout: float | None = None,
             **kwargs: Any) -> Any:
        """See ``Bus.call``. Call monitoring is oslo.messaging's: the message carries the
        monitor timeout, the serving side's dispatcher heartbeats on the reply queue
        every half of it while the method runs, and the waiting side gives up when a
        heartbeat is late. A message no server took meanwhile stays queued until
        ``timeout`` expires it; a server that takes it after its caller gave up drops it
        (see ``ABANDONED_AT``)."""
        import oslo_messaging

        from transcell.conf import CONF
        timeout = timeout or CONF.rpc.rpc_response_timeout
        monitor = rpcbus.check_call_monitor_timeout(rpc_call_monitor_timeout, timeout)
        client = self._prepare(topic, rpc_version, rpc_server, timeout, monitor)
        message = rpcbus.serialise({"ctx": ctx.to_dict(), "kwargs": kwargs})
        driver_ctx = {} if monitor is None else {ABANDONED_AT: time.time() + 2 * monitor}
        if tally.ENABLED:
            tally.message("call", topic, method)
        try:
            reply = client.call(driver_ctx, INVOKE, ctx=message["ctx"], name=method,
                                args=message["kwargs"], cast=False)
        except oslo_messaging.MessagingTimeout as exc:
            raise exception.RPCTimeout(topic=topic, method=method) from exc
        except oslo_messaging.UnsupportedVersion as exc:
            raise rpcbus.refuse_version(topic, method, rpc_version) from exc
        except _refusals() as exc:
            raise BrokerRefused(url=self._safe_url(), reason=str(exc)) from exc
        except _unreachable() as exc:
            raise exception.RPCTimeout(topic=topic, method=method) from exc
        except oslo_messaging.RemoteError as exc:
            # oslo.messaging's own failures on the served side (ours come back by value)
            raise exception.RemoteError(exc.exc_type or "RemoteError", str(exc.value),
                                        exc.traceback or "") from exc
        return rpcbus.unwrap(reply)

    def cast(self, ctx: RequestContext, topic: str, method: str, *,
             rpc_version: str = rpcbus.DEFAULT_VERSION, rpc_server: str | None = None,
             **kwargs: Any) -> None:
        client = self._prepare(topic, rpc_version, rpc_server)
        message = rpcbus.serialise({"ctx": ctx.to_dict(), "kwargs": kwargs})
        if tally.ENABLED:
            tally.message("cast", topic, method)
        try:
            client.cast({}, INVOKE, ctx=message["ctx"], name=method, args=message["kwargs"],
                        cast=True)
        except _refusals() as exc:
            raise BrokerRefused(url=self._safe_url(), reason=str(exc)) from exc
        except _unreachable() as exc:
            raise exception.RPCTimeout(topic=topic, method=method) from exc

    # -- lifecycle -------------------------------------------------------------------

    def stop(self) -> None:
        """Stop every listener, then close the transport's connections and reply
        listener, so nothing of this bus stays connected to the broker."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
            listeners = list(self._servers.values())
            self._servers.clear()
        try:
            self._halt(listeners)
        finally:
            self._transport.cleanup()

    def _safe_url(self) -> str:
        """The URL without its password, for messages."""
        scheme, _, rest = self.url.partition("://")
        creds, at, where = rest.rpartition("@")
        return f"{scheme}://{creds.split(':', 1)[0]}:***@{where}" if at else self.url
