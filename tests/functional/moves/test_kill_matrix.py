"""kill -9 of the whole cloud at every point where an accepted request or a move can be
caught, then a restart on the same state: everything is finished or undone, the bytes a
guest wrote are where the server ended, and the audit is clean.

The points come from the code: every step of the move saga (``plan.STEP_NAMES``), so a new
step is covered the day it is written, and the moment right after the API accepted each
kind of request, before any service started on it. One cloud holds one server at each
point (a hold file per server), so a single kill covers them all.
"""

from __future__ import annotations

import os
import signal
import time

import movehelpers as mh
import pytest
from cloudclients import CloudProcess, start_cloud, stop_cloud

from transcell.compute.virt import disk
from transcell.move import plan

pytestmark = pytest.mark.slow

COMPUTE = mh.COMPUTE
#: Offsets a guest writes to before it is moved: inside the base image's data and past it.
WRITES = (4096, 3 * 1024 * 1024 + 512, 2 * 1024 ** 3)


def hold(cloud: CloudProcess, point: str, server_id: str | None = None) -> tuple[str, str]:
    """Hold one server (or, without one, every server) at ``point``."""
    name = f"{point}@{server_id}" if server_id else point
    faults = mh.fault_dir(cloud)
    paths = (os.path.join(faults, f"hold-{name}"), os.path.join(faults, f"reached-{name}"))
    open(paths[0], "w").close()
    return paths


def wait_reached(paths: list[tuple[str, str]], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    for _, reached in paths:
        while not os.path.exists(reached):
            assert time.monotonic() < deadline, f"never reached {reached}"
            time.sleep(0.05)


def kill_and_restart(proc, state: str, paths: list[tuple[str, str]]):
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    for held, reached in paths:
        os.unlink(held)
        os.unlink(reached)
    proc = start_cloud(state)
    return proc, CloudProcess(state, proc.port)


def write_guest(cloud: CloudProcess, server: dict) -> dict[int, bytes]:
    path = mh.root_disk(cloud, server["id"], mh.host_of(server))
    written = {}
    for offset in WRITES:
        data = os.urandom(512)
        disk.guest_write(path, offset, data)
        written[offset] = data
    return written


def assert_bytes_at(cloud: CloudProcess, server_id: str, host: str,
                    written: dict[int, bytes], only_there: bool = True) -> None:
    """The guest's bytes on ``host`` (and, unless a move keeps a copy, nowhere else)."""
    hosts = {d["host"] for d in mh.locate(cloud, server_id)["disks"]}
    assert hosts == {host} if only_there else host in hosts, hosts
    path = mh.root_disk(cloud, server_id, host)
    for offset, data in written.items():
        assert disk.guest_read(path, offset, len(data)) == data, (server_id, offset)


def test_kill_between_every_two_steps_of_a_move(tmp_path, capsys):
    state = str(tmp_path / "cloud")
    proc = start_cloud(state)
    cloud = CloudProcess(state, proc.port)
    try:
        servers = {step: mh.boot(cloud, f"kill-{step}") for step in plan.STEP_NAMES}
        written = {step: write_guest(cloud, srv) for step, srv in servers.items()}
        paths = [hold(cloud, step, srv["id"]) for step, srv in servers.items()]
        for srv in servers.values():
            mh.action(cloud, srv["id"], {"resize": {"flavorRef": "21"}}, cloud_name=mh.USER)
        wait_reached(paths)
        proc, cloud = kill_and_restart(proc, state, paths)

        flip = plan.STEP_NAMES.index("flip")
        for index, (step, srv) in enumerate(servers.items()):
            sid, source = srv["id"], mh.host_of(srv)
            if index < flip:  # before the point of no return: undone
                found = mh.wait_task_done(cloud, sid)
                assert found["status"] == "ACTIVE" and mh.host_of(found) == source, step
                assert mh.wait_migration(cloud, sid, "error")
                assert_bytes_at(cloud, sid, source, written[step])
            else:  # past it: finished, and the user still chooses how it ends
                found = mh.wait_status(cloud, sid, "VERIFY_RESIZE")
                assert mh.cell_of_host(mh.host_of(found)) == "cell2", step
                mh.action(cloud, sid, {"confirmResize": None}, expect=204,
                          cloud_name=mh.USER)
                found = mh.wait_status(cloud, sid, "ACTIVE")
                assert_bytes_at(cloud, sid, mh.host_of(found), written[step])
        mh.assert_audit_clean(cloud)
        with capsys.disabled():
            print(f"\nkill points covered between move steps: {len(servers)} "
                  f"({', '.join(servers)})")
    finally:
        stop_cloud(proc)


def test_kill_right_after_every_accepted_request(tmp_path, capsys):
    """What each 202 (or 204) promised is carried out after the restart."""
    state = str(tmp_path / "cloud")
    proc = start_cloud(state)
    cloud = CloudProcess(state, proc.port)
    user = mh.USER
    try:
        srv = {name: mh.boot(cloud, f"accepted-{name}", stopped=(name == "start"))
               for name in ("resize", "migrate", "confirm", "revert", "delete", "stop",
                            "start")}
        written = {name: write_guest(cloud, s) for name, s in srv.items()
                   if name in ("resize", "migrate", "revert")}
        for name in ("confirm", "revert"):
            mh.action(cloud, srv[name]["id"], {"resize": {"flavorRef": "21"}}, cloud_name=user)
        for name in ("confirm", "revert"):
            srv[name]["target"] = mh.host_of(mh.wait_status(cloud, srv[name]["id"],
                                                            "VERIFY_RESIZE"))
        points = {"resize": "accepted-move", "migrate": "accepted-move",
                  "confirm": "accepted-confirming", "revert": "accepted-reverting",
                  "delete": "accepted-delete", "stop": "accepted-stop",
                  "start": "accepted-start"}
        paths = [hold(cloud, points[name], s["id"]) for name, s in srv.items()]
        # a build: its 202 comes once its rows exist; the host's work is held
        build_hold = hold(cloud, "accepted-build")
        body = {"server": {"name": "accepted-build", "flavorRef": "11",
                           "imageRef": mh.image_id(cloud),
                           "networks": [{"uuid": mh.network_id(cloud)}]}}
        resp = cloud.request("POST", f"{COMPUTE}/servers", cloud=user, json=body)
        assert resp.status_code == 202, resp.text
        built = resp.json()["server"]["id"]

        mh.action(cloud, srv["resize"]["id"], {"resize": {"flavorRef": "21"}}, cloud_name=user)
        mh.action(cloud, srv["migrate"]["id"], {"migrate": None})
        mh.action(cloud, srv["confirm"]["id"], {"confirmResize": None}, expect=204,
                  cloud_name=user)
        mh.action(cloud, srv["revert"]["id"], {"revertResize": None}, cloud_name=user)
        mh.action(cloud, srv["stop"]["id"], {"os-stop": None}, cloud_name=user)
        mh.action(cloud, srv["start"]["id"], {"os-start": None}, cloud_name=user)
        resp = cloud.request("DELETE", f"{COMPUTE}/servers/{srv['delete']['id']}", cloud=user)
        assert resp.status_code == 204, resp.text
        wait_reached([*paths, build_hold])
        proc, cloud = kill_and_restart(proc, state, [*paths, build_hold])

        moved = {}
        for name in ("resize", "migrate"):
            sid = srv[name]["id"]
            found = mh.wait_status(cloud, sid, "VERIFY_RESIZE")
            moved[name] = mh.host_of(found)
            assert moved[name] != mh.host_of(srv[name])
            assert_bytes_at(cloud, sid, moved[name], written[name], only_there=False)
            mh.action(cloud, sid, {"confirmResize": None}, expect=204)
        assert mh.cell_of_host(moved["resize"]) == "cell2"
        found = mh.wait_status(cloud, srv["confirm"]["id"], "ACTIVE")
        assert mh.host_of(found) == srv["confirm"]["target"]
        assert mh.migrations(cloud, srv["confirm"]["id"])[0]["status"] == "confirmed"
        found = mh.wait_status(cloud, srv["revert"]["id"], "ACTIVE")
        assert mh.host_of(found) == mh.host_of(srv["revert"])
        assert mh.migrations(cloud, srv["revert"]["id"])[0]["status"] == "reverted"
        cloud.wait_gone(srv["delete"]["id"])
        assert mh.locate(cloud, srv["delete"]["id"])["disks"] == []
        mh.wait_status(cloud, srv["stop"]["id"], "SHUTOFF")
        mh.wait_status(cloud, srv["start"]["id"], "ACTIVE")
        mh.wait_status(cloud, built, "ACTIVE")
        for name in ("resize", "migrate"):
            mh.wait_status(cloud, srv[name]["id"], "ACTIVE")
            assert_bytes_at(cloud, srv[name]["id"], moved[name], written[name])
        assert_bytes_at(cloud, srv["revert"]["id"], mh.host_of(srv["revert"]), written["revert"])
        mh.assert_audit_clean(cloud)
        with capsys.disabled():
            print(f"\nkill points covered right after an accepted request: {len(points) + 1} "
                  f"({', '.join([*points, 'build'])})")
    finally:
        stop_cloud(proc)
