"""The bus interface and the exceptions it carries across."""

from __future__ import annotations

import importlib
import json
import logging
import re
import threading
import traceback
from typing import Any, Protocol

from transcell import exception
from transcell.context import RequestContext

LOG = logging.getLogger(__name__)


DEFAULT_VERSION = "1.0"
"""What a message carries when its sender names no version, and what an endpoint
without ``RPC_API_VERSION`` accepts."""

_VERSION = re.compile(r"^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)$")


class Bus(Protocol):
    """Every transport behaves alike: JSON payloads, transcell exceptions carried back by
    class, versioned messages.

    The bus's own parameters (``timeout``, ``rpc_version``, ``rpc_server``,
    ``rpc_call_monitor_timeout``) are keyword arguments no RPC method may use: ``rpc_``
    is reserved for the bus, so they never collide with a method's arguments (which
    include names like ``host``).
    """

    def serve(self, topic: str, endpoint: object, server: str | None = None) -> None:
        """Deliver messages for ``topic`` to ``endpoint``'s public methods.

        ``server`` names this listener (a host name) so a caller can address it alone;
        by default the bus's own server name. Several listeners on one topic share its
        messages; serving the same topic and server again replaces the endpoint. The
        endpoint accepts the versions its ``RPC_API_VERSION`` allows (see ``accepts``).
        """

    def unserve(self, topic: str, server: str | None = None) -> None:
        """Stop listening on ``topic``: only as ``server`` when given, else every listener
        this bus has on it."""

    def call(self, ctx: RequestContext, topic: str, method: str,
             timeout: float | None = None, *, rpc_version: str = DEFAULT_VERSION,
             rpc_server: str | None = None, rpc_call_monitor_timeout: float | None = None,
             **kwargs: Any) -> Any:
        """Invoke and wait for the reply (or RPCTimeout); ``rpc_server`` picks one listener.

        ``rpc_call_monitor_timeout`` (seconds, at least ``MIN_CALL_MONITOR_TIMEOUT``) is
        for calls whose ``timeout`` is long: the served side sends heartbeats while the
        method runs, and the call fails with RPCTimeout once none came for that long (the
        serving process died, or never took the message), instead of after ``timeout``.
        A method that keeps running still has the whole ``timeout``.
        """

    def cast(self, ctx: RequestContext, topic: str, method: str, *,
             rpc_version: str = DEFAULT_VERSION, rpc_server: str | None = None,
             **kwargs: Any) -> None:
        """Invoke without waiting."""

    def stop(self) -> None: ...


MIN_CALL_MONITOR_TIMEOUT = 2
"""oslo.messaging's server heartbeats every half of the monitor timeout, in whole seconds,
and sends none when that half is under one second: a shorter monitor timeout would fail
every call that runs longer than it."""


def check_call_monitor_timeout(value: float | None, timeout: float) -> float | None:
    """The monitor timeout a call uses: None when off, or when ``timeout`` comes first."""
    if value is None:
        return None
    if not value >= MIN_CALL_MONITOR_TIMEOUT:
        raise exception.Invalid(reason=f"rpc_call_monitor_timeout must be at least "
                                       f"{MIN_CALL_MONITOR_TIMEOUT} s, not {value!r}")
    return float(value) if value < timeout else None


def parse_version(version: str) -> tuple[int, int]:
    """``"X.Y"`` as numbers; anything else is refused before it is sent."""
    match = _VERSION.match(version) if isinstance(version, str) else None
    if match is None:
        raise exception.Invalid(reason=f"RPC version must be 'X.Y', not {version!r}")
    return int(match.group(1)), int(match.group(2))


def accepts(accepted: str, sent: str) -> bool:
    """A server at X.Y takes messages of major X and minor <= Y: a newer service still
    understands an older sender, an older one refuses what it cannot know."""
    have, want = parse_version(accepted), parse_version(sent)
    return have[0] == want[0] and want[1] <= have[1]


def accepted_version(endpoint: object) -> str:
    version = getattr(endpoint, "RPC_API_VERSION", DEFAULT_VERSION)
    parse_version(version)
    return version


def serialise(payload: Any) -> Any:
    """Round-trip through JSON: what cannot cross a real broker cannot cross this one."""
    return json.loads(json.dumps(payload))


def encode_exception(exc: BaseException) -> dict[str, Any]:
    return {
        "module": type(exc).__module__,
        "class": type(exc).__name__,
        "message": str(exc),
        "kwargs": serialise_kwargs(getattr(exc, "kwargs", {})),
        "traceback": "".join(traceback.format_exception(exc)),
    }


def serialise_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    try:
        return serialise(kwargs)
    except (TypeError, ValueError):
        return {k: str(v) for k, v in kwargs.items()}


def decode_exception(data: dict[str, Any]) -> BaseException:
    """Rebuild transcell's own exceptions by class; anything else becomes RemoteError."""
    if data["module"].startswith("transcell."):
        try:
            cls = getattr(importlib.import_module(data["module"]), data["class"])
            if isinstance(cls, type) and issubclass(cls, exception.TranscellError):
                exc = cls.__new__(cls)
                exception.TranscellError.__init__(exc, data["message"], **data["kwargs"])
                exc.remote_traceback = data["traceback"]  # type: ignore[attr-defined]
                return exc
        except (ImportError, AttributeError):
            pass
    return exception.RemoteError(data["class"], data["message"], data["traceback"])


def dispatch(endpoint: object, method: str, ctx_dict: dict, kwargs: dict) -> Any:
    if method.startswith("_"):
        raise exception.Invalid(f"RPC method {method} is private")
    func = getattr(endpoint, method, None)
    if func is None or not callable(func):
        raise exception.NotFound(f"RPC method {method} does not exist on "
                                 f"{type(endpoint).__name__}")
    return func(RequestContext.from_dict(ctx_dict), **kwargs)


def handle(endpoint: object, method: str, ctx_dict: dict, kwargs: dict) -> dict[str, Any]:
    """Run one message on the serving side; the reply carries the result or the error by
    value, so every transport brings exceptions back the same way."""
    try:
        return {"result": serialise(dispatch(endpoint, method, ctx_dict, kwargs))}
    except Exception as exc:  # carried back to the caller by value
        return {"error": encode_exception(exc)}


def unwrap(reply: dict[str, Any]) -> Any:
    """The caller's side of ``handle``: the result, or the served side's exception."""
    if "error" in reply:
        raise decode_exception(reply["error"])
    return reply["result"]


def refuse_version(topic: str, method: str, version: str) -> exception.RPCVersionUnsupported:
    return exception.RPCVersionUnsupported(topic=topic, method=method, version=version)


_buses: dict[str, Bus] = {}
_lock = threading.Lock()


def get_bus(url: str) -> Bus:
    """One bus per transport URL: ``inproc://name`` in-process, ``rabbit://`` for RabbitMQ.

    A RabbitMQ bus made here names its listeners after this machine (see RabbitBus);
    a service that must be addressable alone passes ``server=`` to ``serve``.
    """
    with _lock:
        bus = _buses.get(url)
        if bus is None:
            if url.startswith("inproc://"):
                from transcell.rpc.inproc import InprocBus
                bus = InprocBus(url)
            elif url.startswith("rabbit://"):
                from transcell.rpc.rabbit import RabbitBus
                bus = RabbitBus(url)
            else:
                raise exception.Invalid(f"Unsupported transport_url {url}; "
                                        "use inproc://NAME or rabbit://USER:PASS@HOST:PORT/VHOST")
            _buses[url] = bus
        return bus


def reset() -> None:
    with _lock:
        for bus in _buses.values():
            bus.stop()
        _buses.clear()
