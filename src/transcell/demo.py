"""``transcell demo``: the main job on the embedded default, driven through the public API.

It starts a two-cell cloud in this process, then acts only as a client would:
openstacksdk over HTTP with the generated clouds.yaml. Servers are built in
both cells (the gen1/gen2 flavors pin the hardware generation), shown where
they landed, stopped, started and deleted; the audit must come out clean.
"""

from __future__ import annotations

import os
import tempfile
import time

from transcell.audit import run_audit
from transcell.cloud import EmbeddedCloud

SERVERS = [("demo-gen1", "gen1.small"), ("demo-gen2", "gen2.small"), ("demo-any", "m1.tiny")]


def connect(state_dir: str, cloud: str = "transcell-admin"):
    import openstack
    from openstack import config as occ

    config = occ.OpenStackConfig(config_files=[os.path.join(state_dir, "clouds.yaml")])
    region = config.get_one(cloud=cloud)
    return openstack.connection.Connection(config=region)


def wait_for(conn, server_id: str, status: str, timeout: float = 120) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        server = conn.compute.get_server(server_id)
        if server.status == status and not server.task_state:
            return server
        if server.status == "ERROR":
            raise RuntimeError(f"server {server.name} went to ERROR: {server.fault}")
        time.sleep(0.2)
    raise TimeoutError(f"server {server_id} did not reach {status} in {timeout}s")


def wait_gone(conn, server_id: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if conn.compute.find_server(server_id, ignore_missing=True) is None:
            return
        time.sleep(0.2)
    raise TimeoutError(f"server {server_id} was not deleted in {timeout}s")


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True))
             for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def run(state_dir: str | None, port: int = 0) -> int:
    if state_dir is None or not os.path.isabs(state_dir) or os.path.basename(state_dir) == "state":
        state_dir = tempfile.mkdtemp(prefix="transcell-demo-")
    cloud = EmbeddedCloud(state_dir, port=port)
    started = time.monotonic()
    cloud.setup()
    cloud.serve()
    print(f"== a two-cell cloud is up at {cloud.base_url} "
          f"({time.monotonic() - started:.1f}s, state in {state_dir})")
    try:
        conn = connect(state_dir)
        for zone in conn.compute.availability_zones(details=True):
            if zone.name == "internal":
                continue
            hosts = ", ".join(sorted((zone.hosts or {}).keys()))
            print(f"   cell {zone.name}: hosts {hosts}")
        image = conn.image.find_image("transcell-base")
        network = conn.network.find_network("private")
        print(f"== building {len(SERVERS)} servers from image {image.name}")
        ids = {}
        for name, flavor_name in SERVERS:
            flavor = conn.compute.find_flavor(flavor_name)
            server = conn.compute.create_server(name=name, flavor_id=flavor.id,
                                                image_id=image.id,
                                                networks=[{"uuid": network.id}])
            ids[name] = server.id
        rows = [["server", "flavor", "cell (AZ)", "host", "status", "address"]]
        for name, flavor_name in SERVERS:
            server = wait_for(conn, ids[name], "ACTIVE")
            address = next((a["addr"] for nets in server.addresses.values() for a in nets), "")
            rows.append([name, flavor_name, server.availability_zone,
                         server.compute_host, server.status, address])
        print(_table(rows))
        print("== stopping and starting every server")
        for server_id in ids.values():
            conn.compute.stop_server(server_id)
        for server_id in ids.values():
            wait_for(conn, server_id, "SHUTOFF")
        print("   all SHUTOFF")
        for server_id in ids.values():
            conn.compute.start_server(server_id)
        for server_id in ids.values():
            wait_for(conn, server_id, "ACTIVE")
        print("   all ACTIVE again")
        print("== deleting every server")
        for server_id in ids.values():
            conn.compute.delete_server(server_id)
        for server_id in ids.values():
            wait_gone(conn, server_id)
        problems = run_audit()
        if problems:
            print("== audit found problems:")
            for problem in problems:
                print(f"   {problem['kind']}: {problem['detail']}")
            return 1
        print("== audit: mappings, rows, allocations, ports, images and disks are consistent")
        print(f"== done in {time.monotonic() - started:.1f}s")
        return 0
    finally:
        cloud.stop()
