"""The in-process bus of the embedded cloud: a thread per message, JSON payloads.

It keeps the rules a broker imposes (JSON only, errors by value, versions checked on the
served side, several listeners sharing a topic) so code tested here behaves the same on
RabbitMQ.
"""

from __future__ import annotations

import itertools
import logging
import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from transcell import exception, tally
from transcell.context import RequestContext
from transcell.rpc import bus as rpcbus

LOG = logging.getLogger(__name__)


class InprocBus:
    def __init__(self, url: str, workers: int = 64, server: str | None = None):
        self.url = url
        self.server = server or socket.gethostname()
        # topic -> server name -> endpoint; insertion order is the round-robin order
        self._endpoints: dict[str, dict[str, object]] = {}
        self._turns: dict[str, itertools.count] = {}
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=workers,
                                        thread_name_prefix=f"rpc-{url[9:]}")

    def serve(self, topic: str, endpoint: object, server: str | None = None) -> None:
        rpcbus.accepted_version(endpoint)
        with self._lock:
            self._endpoints.setdefault(topic, {})[server or self.server] = endpoint
            self._turns.setdefault(topic, itertools.count())

    def unserve(self, topic: str, server: str | None = None) -> None:
        with self._lock:
            if server is None:
                self._endpoints.pop(topic, None)
            else:
                self._endpoints.get(topic, {}).pop(server, None)

    def _require_listener(self, topic: str, server: str | None) -> None:
        """Fail a call at once, as a broker's timeout would later, without taking a turn."""
        with self._lock:
            servers = self._endpoints.get(topic) or {}
            listening = server in servers if server is not None else bool(servers)
        if not listening:
            raise exception.RPCTimeout(topic=topic, method="(no server listening)")

    def _endpoint(self, topic: str, server: str | None) -> object:
        """The listener a message goes to: the one named, else the next in turn, as a
        shared queue hands messages to its consumers."""
        with self._lock:
            servers = self._endpoints.get(topic) or {}
            if server is not None:
                endpoint = servers.get(server)
            elif servers:
                endpoints = list(servers.values())
                endpoint = endpoints[next(self._turns[topic]) % len(endpoints)]
            else:
                endpoint = None
        if endpoint is None:
            raise exception.RPCTimeout(topic=topic, method="(no server listening)")
        return endpoint

    def _run(self, topic: str, server: str | None, method: str, version: str, ctx: dict,
             kwargs: dict) -> dict[str, Any]:
        try:
            endpoint = self._endpoint(topic, server)
            if not rpcbus.accepts(rpcbus.accepted_version(endpoint), version):
                raise rpcbus.refuse_version(topic, method, version)
        except Exception as exc:
            return {"error": rpcbus.encode_exception(exc)}
        return rpcbus.handle(endpoint, method, ctx, kwargs)

    def call(self, ctx: RequestContext, topic: str, method: str,
             timeout: float | None = None, *, rpc_version: str = rpcbus.DEFAULT_VERSION,
             rpc_server: str | None = None, rpc_call_monitor_timeout: float | None = None,
             **kwargs: Any) -> Any:
        """See ``Bus.call``; the call monitor is checked and otherwise ignored: the serving
        thread cannot die apart from the caller's process."""
        from transcell.conf import CONF
        timeout = timeout or CONF.rpc.rpc_response_timeout
        rpcbus.check_call_monitor_timeout(rpc_call_monitor_timeout, timeout)
        rpcbus.parse_version(rpc_version)
        self._require_listener(topic, rpc_server)
        message = rpcbus.serialise({"ctx": ctx.to_dict(), "kwargs": kwargs})
        if tally.ENABLED:
            tally.message("call", topic, method)
        future = self._pool.submit(self._run, topic, rpc_server, method, rpc_version,
                                   message["ctx"], message["kwargs"])
        try:
            reply = future.result(timeout=timeout)
        except FutureTimeout as exc:
            raise exception.RPCTimeout(topic=topic, method=method) from exc
        return rpcbus.unwrap(reply)

    def cast(self, ctx: RequestContext, topic: str, method: str, *,
             rpc_version: str = rpcbus.DEFAULT_VERSION, rpc_server: str | None = None,
             **kwargs: Any) -> None:
        rpcbus.parse_version(rpc_version)
        message = rpcbus.serialise({"ctx": ctx.to_dict(), "kwargs": kwargs})
        if tally.ENABLED:
            tally.message("cast", topic, method)

        def run() -> None:
            reply = self._run(topic, rpc_server, method, rpc_version, message["ctx"],
                              message["kwargs"])
            if "error" in reply:
                LOG.error("cast %s.%s failed: %s", topic, method,
                          reply["error"]["traceback"])

        self._pool.submit(run)

    def stop(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
