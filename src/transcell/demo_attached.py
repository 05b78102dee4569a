"""The demo's second act: servers whose volume and port the new cell cannot reach.

``store-1`` has a data volume on ``local-cell1``, a backend only cell1's
hosts reach; ``edge-1`` sits on the ``routed`` network, whose segment in
cell1 does not exist in cell2. Both are resized to gen2 (cell2) and
confirmed: the volume is migrated to ``local-cell2`` under the same id and
its bytes read back there, the port keeps its id and MAC and is given an
address of cell2's segment (the resize asks for it). Each volume's and
port's fate is printed.
"""

from __future__ import annotations

import hashlib
import os
import time
from typing import Any

from transcell.conf import CONF, volume_data_dir

VOLUME_VERSION = {"OpenStack-API-Version": "volume 3.27"}
TIMEOUT = 90.0


class Failure(Exception):
    pass


def _call(conn, service: str, method: str, path: str, body: Any = None,
          expect: tuple[int, ...] = (200,), headers: dict | None = None,
          version: str | None = None) -> dict:
    proxy = getattr(conn, service)
    kwargs: dict[str, Any] = {"headers": dict(headers or {})}
    if version:
        kwargs["microversion"] = version
    if body is not None:
        kwargs["json"] = body
    resp = getattr(proxy, method.lower())(path, **kwargs)
    if resp.status_code not in expect:
        raise Failure(f"{method} {path}: {resp.status_code} {resp.text[:300]}")
    return resp.json() if resp.content else {}


def _wait(check, what: str) -> Any:
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.2)
    raise Failure(f"{what} did not happen in {TIMEOUT:.0f}s")


def _volume(conn, volume_id: str) -> dict:
    return _call(conn, "block_storage", "GET", f"/volumes/{volume_id}",
                 headers=VOLUME_VERSION)["volume"]


def _server(conn, server_id: str) -> dict:
    return _call(conn, "compute", "GET", f"/servers/{server_id}", version="2.79")["server"]


def _status(conn, server_id: str, status: str) -> dict:
    def check():
        found = _server(conn, server_id)
        if found["status"] == "ERROR":
            raise Failure(f"server {found['name']} went to ERROR: {found.get('fault')}")
        return found if found["status"] == status and \
            found["OS-EXT-STS:task_state"] is None else None
    return _wait(check, f"server {server_id} reaching {status}")


def _backend(volume: dict) -> str:
    return volume["os-vol-host-attr:host"].split("@", 1)[1].split("#", 1)[0]


def _port(conn, server_id: str) -> dict:
    ports = _call(conn, "network", "GET", f"/ports?device_id={server_id}")["ports"]
    return ports[0]


def _boot(conn, name: str, flavor: str, network: str) -> str:
    image = conn.image.find_image("transcell-base")
    net = conn.network.find_network(network)
    flavor_id = conn.compute.find_flavor(flavor).id
    body = {"server": {"name": name, "flavorRef": flavor_id, "imageRef": image.id,
                       "networks": [{"uuid": net.id}]}}
    server_id = _call(conn, "compute", "POST", "/servers", body, expect=(202,))["server"]["id"]
    _status(conn, server_id, "ACTIVE")
    return server_id


def act(conn) -> list[str]:
    """Run the act; returns the problems found (empty: every check held)."""
    problems: list[str] = []
    print("== a server with a data volume on local-cell1 (only cell1 reaches it) and one on "
          "the routed network (a segment per cell)")
    store = _boot(conn, "store-1", "gen1.small", "private")
    volume = _call(conn, "block_storage", "POST", "/volumes",
                   {"volume": {"name": "store-1-data", "size": 1,
                               "volume_type": "local-cell1"}},
                   expect=(202,), headers=VOLUME_VERSION)["volume"]
    _wait(lambda: _volume(conn, volume["id"])["status"] == "available", "volume available")
    _call(conn, "compute", "POST", f"/servers/{store}/os-volume_attachments",
          {"volumeAttachment": {"volumeId": volume["id"]}}, version="2.79")
    _wait(lambda: _volume(conn, volume["id"])["status"] == "in-use", "volume attached")
    path = os.path.join(volume_data_dir(), "local-cell1", f"volume-{volume['id']}")
    data = hashlib.sha256(b"store-1").digest() * (8 * 1024 * 1024 // 32)
    with open(path, "r+b") as fh:  # what the guest wrote to its volume
        fh.seek(64 * 1024 * 1024)
        fh.write(data)
    edge = _boot(conn, "edge-1", "gen1.small", "routed")
    before = _port(conn, edge)

    gen2 = conn.compute.find_flavor("gen2.small").id
    _call(conn, "compute", "POST", f"/servers/{store}/action",
          {"resize": {"flavorRef": gen2}}, expect=(202,))
    _call(conn, "compute", "POST", f"/servers/{edge}/action",
          {"resize": {"flavorRef": gen2, "transcell:readdress_ports": True}}, expect=(202,))
    for server_id in (store, edge):
        _status(conn, server_id, "VERIFY_RESIZE")
        _call(conn, "compute", "POST", f"/servers/{server_id}/action",
              {"confirmResize": None}, expect=(204,))
    for server_id in (store, edge):
        _status(conn, server_id, "ACTIVE")

    moved = _volume(conn, volume["id"])
    where = os.path.join(volume_data_dir(), _backend(moved), f"volume-{volume['id']}")
    with open(where, "rb") as fh:
        fh.seek(64 * 1024 * 1024)
        intact = fh.read(len(data)) == data
    if _backend(moved) != "local-cell2" or not intact or os.path.exists(path):
        problems.append(f"volume {volume['id']} ended on {_backend(moved)} "
                        f"(bytes {'intact' if intact else 'LOST'})")
    print(f"   volume {volume['id']} of store-1: local-cell1 -> {_backend(moved)}, same id, "
          f"{len(data) // (1024 * 1024)} MiB written by the guest "
          f"{'verified' if intact else 'NOT FOUND'} there; the cell1 copy is gone")
    after = _port(conn, edge)
    old_ip = before["fixed_ips"][0]["ip_address"]
    new_ip = after["fixed_ips"][0]["ip_address"]
    if after["id"] != before["id"] or after["mac_address"] != before["mac_address"] or \
            old_ip == new_ip:
        problems.append(f"port {before['id']} of edge-1 was not re-addressed in place")
    print(f"   port {after['id']} of edge-1 (MAC {after['mac_address']}): {old_ip} on the "
          f"cell1 segment -> {new_ip} on the cell2 segment, bound to "
          f"{after.get('binding:host_id')}")
    print(f"   (asked for with transcell:readdress_ports; [network] readdress_on_move = "
          f"{CONF.network.readdress_on_move})")
    for server_id in (store, edge):
        _call(conn, "compute", "DELETE", f"/servers/{server_id}", expect=(204,))
    for server_id in (store, edge):
        _wait(lambda sid=server_id: conn.compute.get(f"/servers/{sid}").status_code == 404,
              "server deleted")
    _wait(lambda: _volume(conn, volume["id"])["status"] == "available", "volume detached")
    _call(conn, "block_storage", "DELETE", f"/volumes/{volume['id']}", expect=(202,),
          headers=VOLUME_VERSION)
    return problems
