"""The in-process bus of the embedded cloud: a thread per message, JSON payloads."""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from transcell import exception
from transcell.context import RequestContext
from transcell.rpc import bus as rpcbus

LOG = logging.getLogger(__name__)


class InprocBus:
    def __init__(self, url: str, workers: int = 64):
        self.url = url
        self._endpoints: dict[str, object] = {}
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=workers,
                                        thread_name_prefix=f"rpc-{url[9:]}")

    def serve(self, topic: str, endpoint: object) -> None:
        with self._lock:
            self._endpoints[topic] = endpoint

    def unserve(self, topic: str) -> None:
        with self._lock:
            self._endpoints.pop(topic, None)

    def _endpoint(self, topic: str) -> object:
        with self._lock:
            endpoint = self._endpoints.get(topic)
        if endpoint is None:
            raise exception.RPCTimeout(topic=topic, method="(no server listening)")
        return endpoint

    def _run(self, topic: str, method: str, ctx: dict, kwargs: dict) -> dict[str, Any]:
        try:
            endpoint = self._endpoint(topic)
            result = rpcbus.dispatch(endpoint, method, ctx, kwargs)
            return {"result": rpcbus.serialise(result)}
        except Exception as exc:  # carried back to the caller by value
            return {"error": rpcbus.encode_exception(exc)}

    def call(self, ctx: RequestContext, topic: str, method: str,
             timeout: float | None = None, **kwargs: Any) -> Any:
        from transcell.conf import CONF
        timeout = timeout or CONF.rpc.rpc_response_timeout
        self._endpoint(topic)
        message = rpcbus.serialise({"ctx": ctx.to_dict(), "kwargs": kwargs})
        future = self._pool.submit(self._run, topic, method, message["ctx"], message["kwargs"])
        try:
            reply = future.result(timeout=timeout)
        except FutureTimeout as exc:
            raise exception.RPCTimeout(topic=topic, method=method) from exc
        if "error" in reply:
            raise rpcbus.decode_exception(reply["error"])
        return reply["result"]

    def cast(self, ctx: RequestContext, topic: str, method: str, **kwargs: Any) -> None:
        message = rpcbus.serialise({"ctx": ctx.to_dict(), "kwargs": kwargs})

        def run() -> None:
            reply = self._run(topic, method, message["ctx"], message["kwargs"])
            if "error" in reply:
                LOG.error("cast %s.%s failed: %s", topic, method,
                          reply["error"]["traceback"])

        self._pool.submit(run)

    def stop(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
