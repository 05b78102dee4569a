"""A TCP relay that is the only way out of a cell's network namespace.

A cell's compute hosts live in a network namespace with no default route (see
``transcell.deploy.netns``). The one address they can reach is their cell's
*host address*, and on it nothing listens but this relay, which forwards a fixed
set of ports to fixed targets on the host (the cell's database server, RabbitMQ,
the image/network/placement/identity/compute API ports). The port list is the
allow-list: a port that is not mapped has no listener, so the connection is
refused. That is why the relay can stand in for firewall rules on a machine that
has no iptables or nftables.

The listening sockets are made inside a namespace (``netns``) while the outgoing
connections are made from the namespace the relay started in: a socket keeps the
namespace it was created in, so one process bridges the two without routing or
forwarding between them.

Forwarding uses asyncio protocols and transports rather than streams: bytes go
from one transport's read straight into the other's write, and flow control
pauses the reading side when the writing side's buffer is full, so an image
upload of many GiB holds a bounded amount of memory. Half-closes are passed on
(a client's ``shutdown(SHUT_WR)`` reaches the target as EOF), which HTTP uploads
and some database drivers rely on.

Run as its own process (``python -m transcell.deploy.relay --listen HOST
[--netns NAME] PORT[=HOST:PORT] ...``; it prints ``ready`` once listening and
serves until SIGTERM) so that restarting any other service never drops a cell's
connections; :class:`RelayProcess` starts and stops one. :class:`Relay` is the
same relay inside the calling process, on a thread of its own.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import os
import selectors
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

Target = tuple[str, int]

CLONE_NEWNET = 0x40000000
NETNS_RUN_DIR = Path("/run/netns")

# A write buffer this large before reading from the other side pauses: enough
# to keep a fast link busy while a slow peer catches up, small enough that a
# thousand idle-but-stuck connections stay cheap.
_HIGH_WATER = 1 << 20
_LOW_WATER = 1 << 18


class RelayError(RuntimeError):
    """The relay could not start (a port in use, a namespace missing, ...)."""


# --- namespaces ---------------------------------------------------------------

def _setns(fd: int) -> None:
    setns = getattr(os, "setns", None)  # Python 3.12+
    if setns is not None:
        setns(fd, CLONE_NEWNET)
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


@contextlib.contextmanager
def entered_netns(name: str | None) -> Iterator[None]:
    """Make sockets in the named network namespace, then come back.

    Only the calling thread moves (setns is per thread), so other threads of the
    process keep making sockets where they were. ``None`` stays where we are.
    """
    if name is None:
        yield
        return
    here = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        try:
            there = os.open(NETNS_RUN_DIR / name, os.O_RDONLY)
        except FileNotFoundError:
            raise RelayError(f"network namespace {name!r} does not exist") from None
        try:
            _setns(there)
        finally:
            os.close(there)
        try:
            yield
        finally:
            _setns(here)
    finally:
        os.close(here)


def enter_netns(name: str) -> None:
    """Move the calling thread into the named namespace for good."""
    fd = os.open(NETNS_RUN_DIR / name, os.O_RDONLY)
    try:
        _setns(fd)
    finally:
        os.close(fd)


# --- forwarding ---------------------------------------------------------------

class _End(asyncio.Protocol):
    """One side of a relayed connection; ``peer`` is the other side."""

    def __init__(self, live: set[_End]) -> None:
        self.transport: asyncio.Transport | None = None
        self.peer: _End | None = None
        self.read_eof = False
        self._live = live

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.set_write_buffer_limits(high=_HIGH_WATER, low=_LOW_WATER)
        self._live.add(self)

    def data_received(self, data: bytes) -> None:
        peer = self.peer
        if peer is not None and peer.transport is not None and not peer.transport.is_closing():
            peer.transport.write(data)

    def eof_received(self) -> bool:
        self.read_eof = True
        peer = self.peer
        if peer is None or peer.transport is None or peer.transport.is_closing():
            return False
        if peer.read_eof or not peer.transport.can_write_eof():
            # Both directions are done: close (pending writes are flushed first).
            peer.transport.close()
            return False
        peer.transport.write_eof()
        return True  # keep our write direction open for the peer's answer

    def pause_writing(self) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        self._live.discard(self)
        peer = self.peer
        if peer is not None and peer.transport is not None and not peer.transport.is_closing():
            if exc is None:
                peer.transport.close()
            else:
                peer.transport.abort()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()


class Relay:
    """Forward TCP from ``listen_host:PORT`` to ``mapping[PORT]`` for each mapped port.

    ``netns``: the listening sockets are made in this namespace (the outgoing
    connections in the namespace of the thread that calls :meth:`start`).
    ``also_listen``: more (namespace, address) places with the same ports, for
    instance the cell namespace's own 127.0.0.1, so that URLs naming 127.0.0.1
    (a Keystone catalog's endpoints) work unchanged inside the cell.
    ``source_host``: bind outgoing connections to this address, for instance a
    distinct 127.x.y.z per cell so a database server's log tells cells apart
    (RabbitMQ lets guest in from all of 127/8; PostgreSQL's pg_hba must allow it).
    """

    def __init__(self, listen_host: str, mapping: Mapping[int, Target], *,
                 netns: str | None = None, source_host: str | None = None,
                 also_listen: Sequence[tuple[str | None, str]] = (),
                 backlog: int = 512) -> None:
        if not mapping:
            raise ValueError("a relay needs at least one port")
        self.listen_host = listen_host
        self.mapping = {int(port): (str(host), int(tport))
                        for port, (host, tport) in mapping.items()}
        self.netns = netns
        self.source_host = source_host
        self.places = [(netns, listen_host), *also_listen]
        self.backlog = backlog
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._servers: list[asyncio.AbstractServer] = []
        self._live: set[_End] = set()
        self._connecting: set[asyncio.Task[None]] = set()  # the loop holds tasks weakly

    @property
    def ports(self) -> list[int]:
        return sorted(self.mapping)

    @property
    def open_connections(self) -> int:
        """Relayed connections still open, counting each direction's socket once."""
        return len(self._live)

    def _bind(self) -> list[tuple[socket.socket, Target]]:
        bound: list[tuple[socket.socket, Target]] = []
        try:
            for netns, host in self.places:
                family = socket.AF_INET6 if ":" in host else socket.AF_INET
                with entered_netns(netns):
                    for port, target in sorted(self.mapping.items()):
                        sock = socket.socket(family, socket.SOCK_STREAM)
                        bound.append((sock, target))
                        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                        try:
                            sock.bind((host, port))
                        except OSError as exc:
                            where = f" in namespace {netns}" if netns else ""
                            raise RelayError(f"cannot listen on {host}:{port}{where}: "
                                             f"{exc.strerror or exc}") from exc
                        sock.listen(self.backlog)
                        sock.setblocking(False)
        except BaseException:
            for sock, _ in bound:
                sock.close()
            raise
        return bound

    def start(self) -> None:
        """Listen on every mapped port; returns once connections are accepted."""
        if self._thread is not None:
            raise RelayError("relay already started")
        bound = self._bind()
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(target=self._run, args=(loop,), daemon=True,
                                        name=f"relay-{self.listen_host}")
        self._thread.start()
        try:
            asyncio.run_coroutine_threadsafe(self._serve(bound), loop).result(timeout=30)
        except BaseException:
            self.stop()
            for sock, _ in bound:
                sock.close()
            raise

    @staticmethod
    def _run(loop: asyncio.AbstractEventLoop) -> None:
        asyncio.set_event_loop(loop)
        loop.run_forever()

    async def _serve(self, bound: list[tuple[socket.socket, Target]]) -> None:
        loop = asyncio.get_running_loop()
        for sock, target in bound:
            server = await loop.create_server(lambda t=target: self._accepted(t), sock=sock)
            self._servers.append(server)

    def _accepted(self, target: Target) -> _End:
        inbound = _Inbound(self._live, self, target)
        return inbound

    async def _connect(self, inbound: _Inbound, target: Target) -> None:
        loop = asyncio.get_running_loop()
        outbound = _End(self._live)
        # Linked before the connection exists: the target may speak first (a
        # database or broker greeting) and its bytes must find the client.
        outbound.peer, inbound.peer = inbound, outbound
        local = (self.source_host, 0) if self.source_host else None
        try:
            await loop.create_connection(lambda: outbound, target[0], target[1],
                                         local_addr=local)
        except OSError as exc:
            # Said once per refused connection: a cell whose service cannot reach
            # an allowed target is the first thing to look for in a relay's log.
            print(f"relay: {self.listen_host} -> {target[0]}:{target[1]}: "
                  f"{exc.strerror or exc}", file=sys.stderr, flush=True)
            inbound.abort()  # the client sees a reset, as if the port were closed
            return
        if inbound.transport is None or inbound.transport.is_closing():
            outbound.abort()
            return
        inbound.linked()

    def stop(self) -> None:
        """Stop listening and cut every relayed connection."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return

        async def shutdown() -> None:
            for server in self._servers:
                server.close()
            for task in list(self._connecting):
                task.cancel()
            for end in list(self._live):
                end.abort()
            await asyncio.sleep(0)

        if thread.is_alive():
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(shutdown(), loop).result(timeout=10)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=10)
        if not thread.is_alive():
            loop.close()
        self._servers.clear()
        self._loop = self._thread = None

    def __enter__(self) -> Relay:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _Inbound(_End):
    """The client's side: holds its bytes until the target has answered the connect.

    Reading is paused from the start, but some Python 3.11 builds (Debian's
    3.11.2) begin reading even so; what arrives early is kept, in order, and
    passed on once the target is connected.
    """

    def __init__(self, live: set[_End], relay: Relay, target: Target) -> None:
        super().__init__(live)
        self._relay = relay
        self._target = target
        self._linked = False
        self._early: list[bytes] = []
        self._early_eof = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        assert self.transport is not None
        self.transport.pause_reading()
        task = asyncio.get_running_loop().create_task(self._relay._connect(self, self._target))
        self._relay._connecting.add(task)
        task.add_done_callback(self._relay._connecting.discard)

    def data_received(self, data: bytes) -> None:
        if self._linked:
            super().data_received(data)
            return
        self._early.append(data)
        if self.transport is not None:
            self.transport.pause_reading()

    def eof_received(self) -> bool:
        if self._linked:
            return super().eof_received()
        self._early_eof = True
        return True  # decided once the target is connected

    def linked(self) -> None:
        """The target is connected: pass on what came early, then read on."""
        self._linked = True
        early, self._early = self._early, []
        for data in early:
            super().data_received(data)
        if self._early_eof:
            if not super().eof_received() and self.transport is not None:
                self.transport.close()
            return
        if self.transport is not None:
            self.transport.resume_reading()


# --- as a process -------------------------------------------------------------

def parse_mapping(specs: list[str]) -> dict[int, Target]:
    """``PORT`` (to 127.0.0.1:PORT) or ``PORT=HOST:TPORT`` each."""
    mapping: dict[int, Target] = {}
    for spec in specs:
        port_s, _, target = spec.partition("=")
        port = int(port_s)
        if target:
            host, _, tport = target.rpartition(":")
            mapping[port] = (host.strip("[]") or "127.0.0.1", int(tport))
        else:
            mapping[port] = ("127.0.0.1", port)
    return mapping


def format_mapping(mapping: Mapping[int, Target]) -> list[str]:
    return [f"{port}={host}:{tport}" for port, (host, tport) in sorted(mapping.items())]


def loopback_mapping(ports: list[int] | tuple[int, ...] | set[int]) -> dict[int, Target]:
    """The usual allow-list: each port to the same port on the host's 127.0.0.1."""
    return {int(p): ("127.0.0.1", int(p)) for p in ports}


def _die_with_parent(parent: int) -> None:
    pr_set_pdeathsig = 1
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(pr_set_pdeathsig, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != parent:  # the parent was already gone before prctl
        sys.exit(0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m transcell.deploy.relay",
        description="Forward an allow-list of TCP ports from one address to host targets.")
    parser.add_argument("--listen", required=True, help="address to listen on")
    parser.add_argument("--netns", help="make the listening sockets in this namespace")
    parser.add_argument("--source", help="bind outgoing connections to this address")
    parser.add_argument("--also-listen", action="append", default=[], metavar="NETNS,HOST",
                        help="listen on the same ports here too (NETNS '-': ours)")
    parser.add_argument("--parent-pid", type=int,
                        help="exit when this process (our parent) exits")
    parser.add_argument("ports", nargs="+", metavar="PORT[=HOST:PORT]")
    args = parser.parse_args(argv)
    if args.parent_pid:
        _die_with_parent(args.parent_pid)

    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, lambda *_: stop.set())

    also: list[tuple[str | None, str]] = []
    for spec in args.also_listen:
        ns, _, host = spec.partition(",")
        also.append((None if ns in ("", "-") else ns, host))
    relay = Relay(args.listen, parse_mapping(args.ports), netns=args.netns,
                  source_host=args.source, also_listen=also)
    try:
        relay.start()
    except (RelayError, OSError) as exc:
        print(f"relay: {exc}", file=sys.stderr, flush=True)
        return 1
    if args.netns:
        # The event loop's thread stays where the targets are; the main thread
        # only waits, so it moves into the listening namespace and `ip netns
        # pids` finds this process when the namespace is cleaned up.
        enter_netns(args.netns)
    print(f"ready {args.listen} {' '.join(str(p) for p in relay.ports)}", flush=True)
    while not stop.wait(1.0):
        pass
    relay.stop()
    return 0


class RelayProcess:
    """A relay as its own process; :meth:`start` returns once it listens."""

    def __init__(self, listen_host: str, mapping: Mapping[int, Target], *,
                 netns: str | None = None, source_host: str | None = None,
                 also_listen: Sequence[tuple[str | None, str]] = (),
                 die_with_parent: bool = False, python: str = sys.executable,
                 log_path: str | os.PathLike[str] | None = None) -> None:
        self.listen_host = listen_host
        self.mapping = dict(mapping)
        self.netns = netns
        self.source_host = source_host
        self.also_listen = list(also_listen)
        self.die_with_parent = die_with_parent
        self.python = python
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def argv(self) -> list[str]:
        """The command line, also usable by a launcher that runs processes itself.

        ``die_with_parent`` ties the relay to the thread that forks it (that is
        how PR_SET_PDEATHSIG works): start it from a long-lived thread.
        """
        cmd = [self.python, "-m", "transcell.deploy.relay", "--listen", self.listen_host]
        if self.netns:
            cmd += ["--netns", self.netns]
        if self.source_host:
            cmd += ["--source", self.source_host]
        for ns, host in self.also_listen:
            cmd += ["--also-listen", f"{ns or '-'},{host}"]
        if self.die_with_parent:
            cmd += ["--parent-pid", str(os.getpid())]
        return cmd + format_mapping(self.mapping)

    def start(self, timeout: float = 15.0) -> None:
        if self.proc is not None and self.proc.poll() is None:
            return
        log = open(self.log_path, "ab") if self.log_path else None  # noqa: SIM115
        try:
            self.proc = subprocess.Popen(self.argv(), stdout=subprocess.PIPE, stderr=log,
                                         stdin=subprocess.DEVNULL)
        finally:
            if log is not None:
                log.close()
        assert self.proc.stdout is not None
        line = b""
        deadline = time.monotonic() + timeout
        with selectors.DefaultSelector() as sel:
            sel.register(self.proc.stdout, selectors.EVENT_READ)
            while not line.endswith(b"\n"):
                left = deadline - time.monotonic()
                if left <= 0 or not sel.select(left):
                    self.stop()
                    raise RelayError(f"relay on {self.listen_host} not ready in {timeout}s")
                chunk = os.read(self.proc.stdout.fileno(), 4096)
                if not chunk:
                    break
                line += chunk
        if not line.startswith(b"ready"):
            rc = self.proc.wait(timeout=5)
            self.proc.stdout.close()
            self.proc = None
            raise RelayError(f"relay on {self.listen_host} exited with {rc} before ready"
                             + (f" (see {self.log_path})" if self.log_path else ""))

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 10.0) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=timeout)
        if proc.stdout is not None:
            proc.stdout.close()


if __name__ == "__main__":
    sys.exit(main())
