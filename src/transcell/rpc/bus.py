"""The bus interface and the exceptions it carries across."""

from __future__ import annotations

import importlib
import json
import logging
import threading
import traceback
from typing import Any, Protocol

from transcell import exception
from transcell.context import RequestContext

LOG = logging.getLogger(__name__)


class Bus(Protocol):
    def serve(self, topic: str, endpoint: object) -> None:
        """Deliver messages for ``topic`` to ``endpoint``'s public methods."""

    def unserve(self, topic: str) -> None: ...

    def call(self, ctx: RequestContext, topic: str, method: str,
             timeout: float | None = None, **kwargs: Any) -> Any:
        """Invoke and wait for the reply (or RPCTimeout)."""

    def cast(self, ctx: RequestContext, topic: str, method: str, **kwargs: Any) -> None:
        """Invoke without waiting."""

    def stop(self) -> None: ...


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
    if func is None:
        raise exception.NotFound(f"RPC method {method} does not exist on "
                                 f"{type(endpoint).__name__}")
    return func(RequestContext.from_dict(ctx_dict), **kwargs)


_buses: dict[str, Bus] = {}
_lock = threading.Lock()


def get_bus(url: str) -> Bus:
    """One bus per transport URL: ``inproc://name`` in-process, ``rabbit://`` for RabbitMQ."""
    with _lock:
        bus = _buses.get(url)
        if bus is None:
            if url.startswith("inproc://"):
                from transcell.rpc.inproc import InprocBus
                bus = InprocBus(url)
            else:
                raise exception.Invalid(f"Unsupported transport_url {url}; "
                                        "use inproc://NAME")
            _buses[url] = bus
        return bus


def reset() -> None:
    with _lock:
        for bus in _buses.values():
            bus.stop()
        _buses.clear()
