"""Network namespaces that keep each cell's compute hosts apart.

Cells exist so that one cell's hosts cannot reach another cell's database,
broker or hosts. With ``transcell up --netns`` the compute hosts of a cell run
inside a network namespace of that cell, and the only things they can reach are
the allow-listed endpoints of their cell: its database server port, RabbitMQ,
and the HTTP ports of the image, network, placement, identity and compute APIs.

Layout of one cell (``P`` is the deployment's prefix, ``C`` the cell name)::

    namespace P.C (the cell's hosts)         namespace P.C.gw (the cell's gateway)
    lo 127.0.0.1 (up, nothing of the host)
    tcXXXXXXXX 10.a.i.2/30  <---- veth ---->  tgXXXXXXXX 10.a.i.1/30
    no default route                          relay listeners only
                                                  | (sockets of the relay process,
                                                  v  which connects from the host)
                                              host 127.0.0.1:PORT targets

Why a gateway namespace instead of the host side of the veth in the host's own
namespace: an address in the host namespace answers for every socket bound to
0.0.0.0 there (this machine already has such listeners, and any service started
later with a wildcard bind would join them), so a namespace routed to it could
reach far more than its allow-list. Without iptables/nftables nothing could
filter that. In ``P.C.gw`` the *only* sockets are the relay's listeners (the
relay makes them there with setns and makes its outgoing connections from the
host namespace; see ``transcell.deploy.relay``), so the relay's port list is the
whole firewall: an unmapped port is refused, another cell's addresses have no
route, and the host's loopback services are out of reach because the cell's
``127.0.0.1`` is its own loopback.

Neither veth end is ever in the host namespace (it is created directly into the
two namespaces), so several deployments on one machine cannot clash on
interface names or addresses; the prefix keeps their namespace names apart.
Inside a deployment each cell gets its own /30 from its index, so another cell's
address is simply not on any route of this cell. Interface names are short
(``tc``/``tg`` + 8 hex digits of a hash of the namespace name) to stay within
the kernel's 15 characters.

Services in a cell namespace use :attr:`CellNamespace.host_address` where the
host's services use 127.0.0.1, on the same ports; :meth:`CellNamespace.relay`
gives the relay process that makes that true. With ``loopback=True`` the relay
also listens on the cell's own 127.0.0.1 (same ports, same allow-list), so
URLs that name 127.0.0.1 -- a Keystone catalog's endpoints, which the host's
services must be able to use too -- work unchanged inside the cell; the host
address cannot be put in such URLs because it exists only in the gateway.

A launcher restarted on the same state finds the namespaces (``create`` is
idempotent) and takes the relay ports over from a relay an earlier run left
(``start_relay``); ``cleanup(prefix)`` removes everything of a deployment,
ending the processes still inside it (they are the deployment's own, by
construction: only relays run in a gateway, only the cell's services in a cell).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from transcell.deploy.relay import NETNS_RUN_DIR, RelayProcess, Target

_NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,40}$")
GATEWAY_SUFFIX = ".gw"
PREFIX_LEN = 48  # ns names are file names; keep them readable


class NetnsError(RuntimeError):
    """An ``ip`` command failed, or namespaces are not available here."""


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if check and proc.returncode != 0:
        raise NetnsError(f"ip {' '.join(args)}: {proc.stderr.strip() or proc.returncode}")
    return proc


def deployment_prefix(state_dir: str | os.PathLike[str]) -> str:
    """A prefix that is the same for every run on one state directory and differs
    between state directories, so a restart finds its namespaces and parallel
    test clouds never touch each other's."""
    digest = hashlib.sha256(str(Path(state_dir).resolve()).encode()).hexdigest()
    return "tc" + digest[:8]


def list_namespaces() -> list[str]:
    """Names of all named network namespaces on the machine."""
    out = _ip("netns", "list").stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def namespace_pids(name: str) -> list[int]:
    """Processes whose network namespace is ``name`` (empty when it is gone)."""
    proc = _ip("netns", "pids", name, check=False)
    if proc.returncode != 0:
        return []
    return [int(tok) for tok in proc.stdout.split() if tok.isdigit()]


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"  # a zombie has ended


def _end_processes(pids: list[int], timeout: float) -> None:
    pids = [p for p in pids if p != os.getpid()]
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + wait
        while any(_alive(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.05)
        pids = [p for p in pids if _alive(p)]
        if not pids:
            return


def _delete_namespace(name: str, kill_timeout: float | None) -> bool:
    """Delete one namespace (ending its processes first when asked); True if it existed."""
    if not (NETNS_RUN_DIR / name).exists():
        return False
    if kill_timeout is not None:
        _end_processes(namespace_pids(name), kill_timeout)
    proc = _ip("netns", "del", name, check=False)
    if proc.returncode != 0 and (NETNS_RUN_DIR / name).exists():
        raise NetnsError(f"ip netns del {name}: {proc.stderr.strip()}")
    return True


def cleanup(prefix: str, *, kill_timeout: float = 10.0) -> list[str]:
    """Remove every namespace of the deployment ``prefix`` (and with it its veths),
    ending the processes still inside first. Returns the names removed."""
    _check_name(prefix, "prefix")
    removed: list[str] = []
    # Cell namespaces first: their processes talk through the gateways.
    mine = [n for n in list_namespaces() if n.split(".", 1)[0] == prefix]
    for name in sorted(mine, key=lambda n: n.endswith(GATEWAY_SUFFIX)):
        if _delete_namespace(name, kill_timeout):
            removed.append(name)
    return removed


def _check_name(value: str, what: str) -> None:
    if not _NAME_RE.match(value):
        raise ValueError(f"{what} {value!r}: use 1-40 of A-Z a-z 0-9 _ -")


class CellNamespace:
    """The network namespace of one cell's compute hosts, and its way out.

    ``index`` (0-255) must be unique among the cells of the deployment: it picks
    the cell's /30.
    """

    def __init__(self, prefix: str, cell_name: str, index: int) -> None:
        _check_name(prefix, "prefix")
        _check_name(cell_name, "cell name")
        if not 0 <= index <= 255:
            raise ValueError(f"cell index {index} out of 0..255")
        self.prefix = prefix
        self.cell_name = cell_name
        self.index = index
        self.name = f"{prefix}.{cell_name}"
        self.gateway = self.name + GATEWAY_SUFFIX
        tag = hashlib.sha256(self.name.encode()).hexdigest()[:8]
        self.ns_ifname = "tc" + tag
        self.gw_ifname = "tg" + tag
        second = 64 + int(hashlib.sha256(prefix.encode()).hexdigest()[:4], 16) % 128
        self.subnet = f"10.{second}.{index}.0/30"
        self.host_address = f"10.{second}.{index}.1"
        self.ns_address = f"10.{second}.{index}.2"

    def __repr__(self) -> str:
        return f"CellNamespace({self.name!r}, ns={self.ns_address}, host={self.host_address})"

    # -- lifecycle --------------------------------------------------------------

    def exists(self) -> bool:
        return (NETNS_RUN_DIR / self.name).exists() and (NETNS_RUN_DIR / self.gateway).exists()

    def healthy(self) -> bool:
        """Both namespaces there, the link up with our addresses, loopback up."""
        if not self.exists():
            return False
        return (_has_address(self.name, self.ns_ifname, self.ns_address)
                and _has_address(self.gateway, self.gw_ifname, self.host_address)
                and "UP" in _link(self.name, "lo").get("flags", []))

    def create(self) -> CellNamespace:
        """Make the namespaces and their link; a healthy existing pair is kept as is
        (processes already inside stay), a broken one is replaced."""
        if self.healthy():
            return self
        self.destroy()
        try:
            _ip("netns", "add", self.name)
            _ip("netns", "add", self.gateway)
            _ip("link", "add", self.ns_ifname, "netns", self.name, "type", "veth",
                "peer", "name", self.gw_ifname, "netns", self.gateway)
            for ns, ifname, addr in ((self.name, self.ns_ifname, self.ns_address),
                                     (self.gateway, self.gw_ifname, self.host_address)):
                # No IPv6 link-local addresses: the cell speaks IPv4 to its relay only.
                _ip("-n", ns, "link", "set", ifname, "addrgenmode", "none", check=False)
                _ip("-n", ns, "addr", "add", f"{addr}/30", "dev", ifname)
                _ip("-n", ns, "link", "set", ifname, "up")
            _ip("-n", self.name, "link", "set", "lo", "up")
        except BaseException:
            self.destroy()
            raise
        if not self.healthy():
            self.destroy()
            raise NetnsError(f"{self.name}: link did not come up")
        return self

    def destroy(self, *, kill_timeout: float | None = 10.0) -> None:
        """Remove both namespaces (the veth goes with them). Processes still inside
        are ended first unless ``kill_timeout`` is None."""
        _delete_namespace(self.name, kill_timeout)
        _delete_namespace(self.gateway, kill_timeout)

    # -- running things inside --------------------------------------------------

    def exec_prefix(self) -> list[str]:
        """Prepend to a command line to run it inside the cell's namespace."""
        return ["ip", "netns", "exec", self.name]

    def run(self, argv: list[str], **kwargs: Any) -> subprocess.CompletedProcess[Any]:
        """``subprocess.run`` inside the namespace (same keyword arguments)."""
        return subprocess.run(self.exec_prefix() + list(argv), **kwargs)

    def pids(self) -> list[int]:
        return namespace_pids(self.name)

    def relay(self, mapping: Mapping[int, Target], *, loopback: bool = False,
              **kwargs: Any) -> RelayProcess:
        """The relay process of this cell (not started): listens on
        :attr:`host_address` inside the gateway namespace, on ``mapping``'s ports.

        ``loopback``: listen on the same ports on the cell's own 127.0.0.1 too,
        so URLs that name 127.0.0.1 (the identity catalog's endpoints, configs
        shared with the host's services) reach the same allow-list from inside
        the cell unchanged. Other loopback ports of the cell stay closed.
        """
        if loopback:
            kwargs["also_listen"] = [*kwargs.get("also_listen", ()), (self.name, "127.0.0.1")]
        return RelayProcess(self.host_address, mapping, netns=self.gateway, **kwargs)

    def start_relay(self, mapping: Mapping[int, Target], *, loopback: bool = False,
                    **kwargs: Any) -> RelayProcess:
        """End any relay left in the gateway by an earlier run (a launcher killed
        before it could stop it still holds the ports), then start this cell's."""
        _end_processes(namespace_pids(self.gateway), 10.0)
        relay = self.relay(mapping, loopback=loopback, **kwargs)
        relay.start()
        return relay

    def url(self, url: str) -> str:
        """A host URL as seen from inside the cell: 127.0.0.1/localhost become the
        host address (the port stays; the relay listens on the same one)."""
        return re.sub(r"(?<=[@/])(127\.0\.0\.1|localhost)(?=[:/]|$)", self.host_address, url)


def _link(ns: str, ifname: str) -> dict[str, Any]:
    proc = _ip("-n", ns, "-j", "addr", "show", "dev", ifname, check=False)
    if proc.returncode != 0:
        return {}
    try:
        links = json.loads(proc.stdout or "[]")
    except ValueError:
        return {}
    return links[0] if links else {}


def _has_address(ns: str, ifname: str, address: str) -> bool:
    link = _link(ns, ifname)
    flags = link.get("flags", [])
    if "UP" not in flags or "LOWER_UP" not in flags:  # LOWER_UP: the peer end is up too
        return False
    return any(a.get("local") == address and a.get("prefixlen") == 30
               for a in link.get("addr_info", []))
