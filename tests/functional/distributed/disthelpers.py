"""Killing, holding and checking a distributed cloud's services, for its tests."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import movehelpers as mh

from transcell.compute.virt import disk
from transcell.deploy import layout as lay

#: Offsets of the guest writes a test checks after a move: inside the base image's data,
#: past it, and near the end of a 5 GiB disk.
WRITES = (4096, 512 * 1024 * 1024 + 1234, 5 * 1024 ** 3 - 4096)

#: Seconds of a move's lease in the test cloud: a move whose conductor was killed or
#: frozen is taken over within seconds.
LEASE = 6


def pid_of(cloud, service: str) -> int:
    with open(os.path.join(cloud.state_dir, "run", f"{service}.pid")) as fh:
        return int(fh.read())


def kill(cloud, service: str, sig: int = signal.SIGKILL) -> int:
    pid = pid_of(cloud, service)
    os.kill(pid, sig)
    return pid


def wait_restarted(cloud, service: str, old_pid: int, timeout: float = 120) -> int:
    """Until the launcher has started the service again and it said ``ready``."""
    deadline = time.monotonic() + timeout
    log = os.path.join(cloud.state_dir, "logs", f"{service}.log")
    while time.monotonic() < deadline:
        pid = pid_of(cloud, service)
        if pid != old_pid:
            with open(log, "rb") as fh:
                tail = fh.read()[-4000:]
            if f"(pid {pid})".encode() in tail:
                return pid
        time.sleep(0.2)
    raise AssertionError(f"{service} was not started again")


def hold(cloud, point: str, server_id: str) -> tuple[str, str]:
    faults = mh.fault_dir(cloud)
    held = os.path.join(faults, f"hold-{point}@{server_id}")
    open(held, "w").close()
    return held, os.path.join(faults, f"reached-{point}@{server_id}")


def wait_reached(reached: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not os.path.exists(reached):
        assert time.monotonic() < deadline, f"{os.path.basename(reached)} never reached"
        time.sleep(0.1)


def queues_empty(cloud, attempts: int = 40) -> None:
    """No message left unconsumed on any vhost of the deployment."""
    with open(os.path.join(cloud.state_dir, lay.LAYOUT_NAME)) as fh:
        layout = lay.Layout(**json.load(fh))
    left: list[str] = []
    for _ in range(attempts):
        left = []
        for bus in layout.buses:
            out = subprocess.run(["rabbitmqctl", "-q", "list_queues", "-p", layout.vhost(bus),
                                  "name", "messages", "--formatter", "json"],
                                 capture_output=True, text=True, timeout=60)
            assert out.returncode == 0, out.stderr
            left += [f"{bus}:{q['name']}={q['messages']}" for q in json.loads(out.stdout)
                     if q["messages"]]
        if not left:
            return
        time.sleep(0.5)
    raise AssertionError(f"messages left in queues: {left}")


def finished_or_undone(cloud, server_id: str, src_host: str) -> str:
    """Wait for the move's end; confirm a finished one. Returns which it was."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        found = mh.server(cloud, server_id)
        if found["OS-EXT-STS:task_state"] is None and found["status"] in (
                "VERIFY_RESIZE", "ACTIVE"):
            break
        assert found["status"] != "ERROR", found.get("fault")
        time.sleep(0.5)
    else:
        raise AssertionError(f"the move of {server_id} never ended")
    if found["status"] == "VERIFY_RESIZE":
        assert mh.cell_of_host(mh.host_of(found)) == "cell2"
        mh.action(cloud, server_id, {"confirmResize": None}, expect=204)
        found = mh.wait_status(cloud, server_id, "ACTIVE")
        assert mh.cell_of_host(mh.host_of(found)) == "cell2"
        outcome = "finished"
    else:
        assert mh.host_of(found) == src_host
        outcome = "undone"
    assert found["OS-EXT-STS:power_state"] == 1
    return outcome


def write_guest(cloud, server: dict) -> dict[int, bytes]:
    """Known bytes written into a server's root disk where it runs now."""
    path = mh.root_disk(cloud, server["id"], mh.host_of(server))
    written = {}
    for offset in WRITES:
        written[offset] = os.urandom(512)
        disk.guest_write(path, offset, written[offset])
    return written


def assert_bytes(cloud, server_id: str, written: dict[int, bytes]) -> None:
    """The guest reads back what was written, on the host it ended on."""
    host = mh.host_of(mh.server(cloud, server_id))
    path = mh.root_disk(cloud, server_id, host)
    for offset, data in written.items():
        assert disk.guest_read(path, offset, len(data)) == data, (server_id, offset)
