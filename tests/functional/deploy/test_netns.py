"""A cell's namespace reaches its allow-list through its relay, and nothing else.

These need root and ``ip netns``. Without them the tests skip, except under
CI=true, where they fail: a CI machine that cannot make namespaces must not pass
the isolation suite by skipping it.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator

import dbfixtures
import pytest

from transcell.deploy import netns
from transcell.deploy.netns import CellNamespace, cleanup, list_namespaces
from transcell.deploy.relay import Relay, RelayError, RelayProcess

pytestmark = pytest.mark.distributed

RABBIT = ("127.0.0.1", 5672)


@functools.cache
def _netns_unavailable() -> str | None:
    if os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip") is None:
        return "the ip command (iproute2) is not installed"
    probe = f"tcprobe{os.getpid()}"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if made.returncode != 0:
        return f"ip netns add failed: {made.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


def _require(reason: str | None, what: str) -> None:
    if reason is None:
        return
    if dbfixtures.in_ci():
        pytest.fail(f"CI=true requires {what}; {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture
def prefix() -> Iterator[str]:
    _require(_netns_unavailable(), "network namespaces")
    name = "tct" + uuid.uuid4().hex[:7]
    yield name
    cleanup(name)
    assert [n for n in list_namespaces() if n.startswith(name)] == []


@pytest.fixture
def two_cells(prefix: str) -> Iterator[tuple[CellNamespace, CellNamespace]]:
    cells = (CellNamespace(prefix, "cell1", 1).create(),
             CellNamespace(prefix, "cell2", 2).create())
    yield cells
    for cell in cells:
        cell.destroy()


class EchoServer:
    """Echoes every byte back until the client's EOF, then closes."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.sock = socket.create_server((host, 0))
        self.port = self.sock.getsockname()[1]
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._echo, args=(conn,), daemon=True).start()

    @staticmethod
    def _echo(conn: socket.socket) -> None:
        with conn:
            while data := conn.recv(1 << 20):
                conn.sendall(data)

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def echo() -> Iterator[type[EchoServer]]:
    servers: list[EchoServer] = []

    def make(host: str = "127.0.0.1") -> EchoServer:
        servers.append(EchoServer(host))
        return servers[-1]

    yield make  # type: ignore[misc]
    for server in servers:
        server.close()


# Run inside a namespace: for each (host, port), "echo" if the service echoed,
# else why not (errno name, "timeout", "closed").
PROBE = r"""
import errno, json, socket, sys
out = []
for host, port in json.loads(sys.argv[1]):
    try:
        with socket.create_connection((host, port), timeout=1.5) as s:
            s.sendall(b"ping")
            out.append("echo" if s.recv(16) == b"ping" else "closed")
    except socket.timeout:
        out.append("timeout")
    except OSError as exc:
        out.append(errno.errorcode.get(exc.errno, str(exc)))
print(json.dumps(out))
"""


def probe(cell: CellNamespace, targets: list[tuple[str, int]]) -> list[str]:
    proc = cell.run([sys.executable, "-c", PROBE, json.dumps(targets)],
                    capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_each_cell_reaches_only_its_allow_list(two_cells, echo) -> None:
    cell1, cell2 = two_cells
    p1, p2 = echo(), echo()
    wildcard = echo("0.0.0.0")  # a host service bound to every address of the host
    relay1 = cell1.relay({p1.port: ("127.0.0.1", p1.port)})
    relay2 = cell2.relay({p2.port: ("127.0.0.1", p2.port)})
    relay1.start()
    relay2.start()
    try:
        for me, other, mine, theirs in ((cell1, cell2, p1, p2), (cell2, cell1, p2, p1)):
            results = probe(me, [
                (me.host_address, mine.port),         # allowed: through the relay
                (me.host_address, theirs.port),       # the other cell's allow-list
                (me.host_address, wildcard.port),     # host wildcard listener
                ("127.0.0.1", mine.port),             # the host's loopback service
                ("127.0.0.1", wildcard.port),
                (other.host_address, theirs.port),    # the other cell's relay
                (other.ns_address, theirs.port),      # the other cell's hosts
            ])
            assert results == ["echo", "ECONNREFUSED", "ECONNREFUSED", "ECONNREFUSED",
                               "ECONNREFUSED", "ENETUNREACH", "ENETUNREACH"], me
    finally:
        relay1.stop()
        relay2.stop()


def test_loopback_relay_serves_the_allow_list_on_the_cells_own_127_0_0_1(two_cells,
                                                                           echo) -> None:
    cell1, cell2 = two_cells
    allowed, other = echo(), echo()
    wildcard = echo("0.0.0.0")
    with _relay_process(cell1, {allowed.port: ("127.0.0.1", allowed.port)}, loopback=True):
        assert probe(cell1, [("127.0.0.1", allowed.port), (cell1.host_address, allowed.port),
                             ("127.0.0.1", other.port), ("127.0.0.1", wildcard.port)]) == \
            ["echo", "echo", "ECONNREFUSED", "ECONNREFUSED"]
        # The other cell's loopback is its own: nothing of cell1's relay there.
        assert probe(cell2, [("127.0.0.1", allowed.port)]) == ["ECONNREFUSED"]


def test_only_mapped_ports_answer_on_the_host_address(two_cells, echo) -> None:
    cell1, _ = two_cells
    server = echo()
    mapping = {server.port: ("127.0.0.1", server.port), 5999: ("127.0.0.1", server.port)}
    with _relay_process(cell1, mapping):
        scan = r"""
import socket, sys
open_ports = []
for port in range(1, 65536):
    s = socket.socket()
    s.settimeout(1.0)
    if s.connect_ex((sys.argv[1], port)) == 0:
        open_ports.append(port)
    s.close()
print(*open_ports)
"""
        proc = cell1.run([sys.executable, "-c", scan, cell1.host_address],
                         capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert sorted(int(p) for p in proc.stdout.split()) == sorted(mapping)


def test_bytes_through_the_relay_are_intact(two_cells, echo) -> None:
    cell1, _ = two_cells
    server = echo()
    client = r"""
import hashlib, json, os, socket, sys, threading, time
data = os.urandom(8 << 20)
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10)
got = hashlib.sha256()
def send():
    for i in range(0, len(data), 1 << 16):
        s.sendall(data[i:i + (1 << 16)])
    s.shutdown(socket.SHUT_WR)  # the half-close must reach the server through the relay
start = time.monotonic()
sender = threading.Thread(target=send)
sender.start()
n = 0
while chunk := s.recv(1 << 20):
    got.update(chunk)
    n += len(chunk)
sender.join()
print(json.dumps({"sent": hashlib.sha256(data).hexdigest(), "received": got.hexdigest(),
                  "bytes": n, "seconds": time.monotonic() - start}))
"""
    with _relay_process(cell1, {server.port: ("127.0.0.1", server.port)}):
        proc = cell1.run([sys.executable, "-c", client, cell1.host_address, str(server.port)],
                         capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["bytes"] == 8 << 20
    assert out["received"] == out["sent"]
    print(f"relay echo: {8 / out['seconds']:.0f} MiB/s each way")


def test_create_is_idempotent_and_destroy_leaves_nothing(prefix: str) -> None:
    cell = CellNamespace(prefix, "cell1", 3)
    assert not cell.healthy()
    cell.create()
    assert cell.healthy()
    assert {cell.name, cell.gateway} <= set(list_namespaces())
    sleeper = subprocess.Popen(cell.exec_prefix() + ["sleep", "60"])
    try:
        _wait_for(lambda: sleeper.pid in cell.pids())
        cell.create()  # a restart finds the namespace and leaves what runs inside alone
        assert sleeper.poll() is None and sleeper.pid in cell.pids()

        # A broken link (here: the veth gone) is replaced on the next create.
        subprocess.run(["ip", "-n", cell.name, "link", "del", cell.ns_ifname], check=True)
        assert not cell.healthy()
        cell.create()
        assert cell.healthy()
        assert sleeper.wait(timeout=15) is not None  # destroy ended what ran inside

        cell.destroy()
        assert not {cell.name, cell.gateway} & set(list_namespaces())
        links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
        assert cell.ns_ifname not in links and cell.gw_ifname not in links
    finally:
        if sleeper.poll() is None:
            sleeper.kill()
            sleeper.wait()


def test_cleanup_removes_the_deployment_and_its_relays_only(prefix: str, echo) -> None:
    server = echo()
    cells = [CellNamespace(prefix, f"cell{i}", i).create() for i in (1, 2)]
    neighbour = CellNamespace(prefix + "x", "cell1", 1).create()  # another deployment
    relays = [c.relay({server.port: ("127.0.0.1", server.port)}) for c in cells]
    try:
        for relay in relays:
            relay.start()
        removed = cleanup(prefix)
        assert sorted(removed) == sorted(n for c in cells for n in (c.name, c.gateway))
        for relay in relays:  # the relays listened in the gateways: they were ended
            assert relay.proc is not None and relay.proc.wait(timeout=15) is not None
        assert neighbour.healthy()
        assert not [n for n in list_namespaces() if n.split(".")[0] == prefix]
    finally:
        for relay in relays:
            relay.stop()
        neighbour.destroy()


def test_a_restart_replaces_the_relay_an_earlier_run_left(two_cells, echo) -> None:
    cell1, _ = two_cells
    server = echo()
    mapping = {server.port: ("127.0.0.1", server.port)}
    stale = cell1.relay(mapping)  # as if its launcher had been killed with it running
    stale.start()
    try:
        with pytest.raises(RelayError, match="exited with 1"):
            cell1.relay(mapping).start()  # the port is still held
        cell1.create()  # the restarted launcher finds the namespace...
        fresh = cell1.start_relay(mapping)  # ...and takes the ports over
        try:
            assert stale.proc is not None and stale.proc.wait(timeout=15) is not None
            assert probe(cell1, [(cell1.host_address, server.port)]) == ["echo"]
        finally:
            fresh.stop()
    finally:
        stale.stop()


def test_rabbitmq_handshake_through_the_relay(two_cells) -> None:
    try:
        socket.create_connection(RABBIT, timeout=3).close()
        reason = None
    except OSError as exc:
        reason = f"RabbitMQ at {RABBIT[0]}:{RABBIT[1]} is not reachable: {exc}"
    _require(reason, "RabbitMQ")
    cell1, _ = two_cells
    client = r"""
import json, sys, time, amqp
conn = amqp.Connection(host=sys.argv[1], userid="guest", password="guest",
                       virtual_host="/", connect_timeout=5)
conn.connect()
ch = conn.channel()
queue = ch.queue_declare(exclusive=True, auto_delete=True).queue
ch.basic_publish(amqp.Message(b"through the relay"), routing_key=queue)
msg = None
for _ in range(50):
    msg = ch.basic_get(queue, no_ack=True)
    if msg is not None:
        break
    time.sleep(0.1)
print(json.dumps({"product": str(conn.server_properties.get("product")),
                  "body": msg.body.decode() if msg else None}))
conn.close()
"""
    with _relay_process(cell1, {5672: RABBIT}):
        # guest may log in only from loopback: the relay connects from 127.0.0.1.
        proc = cell1.run([sys.executable, "-c", client, f"{cell1.host_address}:5672"],
                         capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
        out = json.loads(proc.stdout)
        assert out == {"product": "RabbitMQ", "body": "through the relay"}
        # The broker itself is not in the namespace: only the relay is.
        assert probe(cell1, [("127.0.0.1", 5672)]) == ["ECONNREFUSED"]


def test_a_cell_reaches_its_database_server_and_not_the_other(two_cells) -> None:
    dbfixtures.require(dbfixtures.MARIADB)
    dbfixtures.require(dbfixtures.POSTGRESQL)
    cell1, _ = two_cells
    client = r"""
import json, sys, pymysql, psycopg2
host = sys.argv[1]
conn = pymysql.connect(host=host, port=3306, user="root", connect_timeout=5)
with conn.cursor() as cur:
    cur.execute("SELECT 6 * 7")
    answer = cur.fetchone()[0]
conn.close()
try:
    psycopg2.connect(host=host, port=5432, user="postgres", dbname="postgres",
                     connect_timeout=3).close()
    other = "connected"
except psycopg2.OperationalError as exc:
    other = "refused" if "refused" in str(exc) else str(exc)
print(json.dumps({"mariadb": answer, "postgresql": other}))
"""
    # cell1's database server is MariaDB: its relay maps 3306 and nothing of PostgreSQL.
    with _relay_process(cell1, {3306: ("127.0.0.1", 3306)}):
        proc = cell1.run([sys.executable, "-c", client, cell1.host_address],
                         capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {"mariadb": 42, "postgresql": "refused"}


def test_a_relay_started_to_die_with_its_launcher_does(prefix: str, echo) -> None:
    cell = CellNamespace(prefix, "cell1", 1).create()
    server = echo()
    launcher = r"""
import sys
from transcell.deploy.netns import CellNamespace
cell = CellNamespace(sys.argv[1], "cell1", 1)
relay = cell.relay({int(sys.argv[2]): ("127.0.0.1", int(sys.argv[2]))}, die_with_parent=True)
relay.start()
print(relay.pid, flush=True)
sys.stdin.read()
"""
    proc = subprocess.Popen([sys.executable, "-c", launcher, prefix, str(server.port)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        relay_pid = int(proc.stdout.readline())
        assert relay_pid in netns.namespace_pids(cell.gateway)
        proc.kill()  # no chance to stop its relay
        proc.wait(timeout=10)
        _wait_for(lambda: not netns._alive(relay_pid))
        assert netns.namespace_pids(cell.gateway) == []
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_in_process_relay_half_close_and_dead_target(echo) -> None:
    server = echo()
    dead = socket.create_server(("127.0.0.1", 0))
    dead_port = dead.getsockname()[1]
    dead.close()
    free = [socket.create_server(("127.0.0.1", 0)) for _ in range(2)]
    ports = [s.getsockname()[1] for s in free]
    for s in free:
        s.close()
    relay = Relay("127.0.0.1", {ports[0]: ("127.0.0.1", server.port),
                                ports[1]: ("127.0.0.1", dead_port)})
    with relay:
        with socket.create_connection(("127.0.0.1", ports[0]), timeout=5) as s:
            s.sendall(b"x" * 100_000)
            s.shutdown(socket.SHUT_WR)
            got = b""
            while chunk := s.recv(65536):
                got += chunk
            assert got == b"x" * 100_000
        # An allowed port whose target is down: accepted, then reset.
        with socket.create_connection(("127.0.0.1", ports[1]), timeout=5) as s:
            with pytest.raises(OSError):
                s.sendall(b"hello")
                if s.recv(10) == b"":
                    raise ConnectionResetError("closed")
        _wait_for(lambda: relay.open_connections == 0)
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", ports[0]), timeout=2).close()


class _FakeTransport:
    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.eof = self.closed = False
        self.reading = True

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def write_eof(self) -> None:
        self.eof = True

    def can_write_eof(self) -> bool:
        return True

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True


def test_bytes_a_client_sends_before_the_target_answers_are_kept_in_order() -> None:
    # Some Python builds read from a transport paused in connection_made.
    from transcell.deploy.relay import _End, _Inbound
    def pair() -> tuple[_Inbound, _End]:
        live: set = set()
        inbound = _Inbound(live, None, ("127.0.0.1", 1))  # type: ignore[arg-type]
        outbound = _End(live)
        inbound.transport = _FakeTransport()  # type: ignore[assignment]
        outbound.transport = _FakeTransport()  # type: ignore[assignment]
        inbound.peer, outbound.peer = outbound, inbound
        return inbound, outbound

    inbound, outbound = pair()
    inbound.data_received(b"one ")
    inbound.data_received(b"two ")
    assert outbound.transport.written == []
    inbound.linked()
    inbound.data_received(b"three")
    assert outbound.transport.written == [b"one ", b"two ", b"three"]
    assert inbound.transport.reading

    inbound, outbound = pair()
    inbound.data_received(b"all")
    assert inbound.eof_received() is True  # nothing decided before the target answers
    assert not outbound.transport.eof
    inbound.linked()
    assert outbound.transport.written == [b"all"] and outbound.transport.eof
    assert not inbound.transport.closed  # the answer can still come back


def test_urls_inside_a_cell_point_at_its_host_address() -> None:
    cell = CellNamespace("tctx", "cell1", 1)
    h = cell.host_address
    assert cell.url("postgresql+psycopg2://u:p@127.0.0.1:5432/c1") == \
        f"postgresql+psycopg2://u:p@{h}:5432/c1"
    assert cell.url("rabbit://u:p@localhost:5672/cell1") == f"rabbit://u:p@{h}:5672/cell1"
    assert cell.url("http://127.0.0.1:9292/v2") == f"http://{h}:9292/v2"
    assert cell.url("http://127.0.0.10:9292") == "http://127.0.0.10:9292"
    assert netns.deployment_prefix("/tmp/a") == netns.deployment_prefix("/tmp/a/")
    assert netns.deployment_prefix("/tmp/a") != netns.deployment_prefix("/tmp/b")
    assert len(cell.ns_ifname) <= 15 and len(cell.gw_ifname) <= 15
    with pytest.raises(ValueError):
        CellNamespace("bad.prefix", "cell1", 1)


@contextlib.contextmanager
def _relay_process(cell: CellNamespace, mapping: dict[int, tuple[str, int]],
                   loopback: bool = False) -> Iterator[RelayProcess]:
    relay = cell.relay(mapping, loopback=loopback)
    relay.start()
    try:
        yield relay
    finally:
        relay.stop()


def _wait_for(cond: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)
