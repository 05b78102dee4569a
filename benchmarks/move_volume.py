"""What a move costs when the server's data volume must change backends.

A server in cell1 has a 1 GiB data volume on ``local-cell1``, a backend only
cell1 reaches, filled with random data (nothing is a hole, nothing is in the
store yet). It is resized to a gen2 flavor, so it moves to cell2 and the
volume is migrated to ``local-cell2`` after the guest stops: through the
image store, verified as a whole. Timed from the resize request to
VERIFY_RESIZE, with the guest's downtime from ``migration show``, against
``shutil.copyfile`` of the volume's file in the same run. Then 10 MiB of the
volume are changed and the server moves back to cell1: the store still
holds the rest under the volume's kept image, so only the change travels.

    .venv/bin/python benchmarks/move_volume.py [--keep]
"""

from __future__ import annotations

import argparse
import os
import time

from harness import GiB, MiB, load_note, machine, running_cloud, timed_copy

VOLUME = "/volume/v3"
HEADERS = {"OpenStack-API-Version": "volume 3.27"}
PIECE = 64 * MiB
#: Ten 1 MiB writes, each in its own store chunk (100 MiB apart).
CHANGES = [(i * 100 * MiB + MiB, MiB) for i in range(10)]


def volume(cloud, volume_id: str) -> dict:
    return cloud.request("GET", f"{VOLUME}/volumes/{volume_id}",
                         headers=HEADERS).json()["volume"]


def wait_volume(cloud, volume_id: str, status: str, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = volume(cloud, volume_id)
        if found["status"] == status:
            return found
        time.sleep(0.1)
    raise RuntimeError(f"volume {volume_id} never became {status}")


def backend(found: dict) -> str:
    return found["os-vol-host-attr:host"].split("@", 1)[1].split("#", 1)[0]


def volume_path(cloud, volume_id: str) -> str:
    return os.path.join(cloud.state_dir, "volumes", backend(volume(cloud, volume_id)),
                        f"volume-{volume_id}")


def line(label: str, seconds: float, size: int, report: dict, copy_rate: float) -> str:
    rate = size / MiB / seconds
    (entry,) = report["volumes"]
    return (f"  {label:34} {seconds:6.2f}s  {rate:7.1f} MiB/s  downtime "
            f"{report['downtime_seconds']:.2f}s  sent {(entry['bytes_sent'] or 0) / MiB:.0f} "
            f"MiB  ratio move/copy {rate / copy_rate:.2f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", action="store_true", help="keep the state directory")
    args = parser.parse_args()
    print(f"move with a 1 GiB data volume on a cell1-only backend, on {machine()}")
    with running_cloud(keep=args.keep) as cloud:
        gen1, gen2 = cloud.flavor_id("gen1.small"), cloud.flavor_id("gen2.small")
        server = cloud.boot("volume-bench", gen1)
        sid = server["id"]
        vid = cloud.request("POST", f"{VOLUME}/volumes", headers=HEADERS, expect=(202,), json={
            "volume": {"name": "bench-data", "size": 1, "volume_type": "local-cell1"}}
        ).json()["volume"]["id"]
        wait_volume(cloud, vid, "available")
        cloud.request("POST", f"/compute/v2.1/servers/{sid}/os-volume_attachments",
                      json={"volumeAttachment": {"volumeId": vid}})
        wait_volume(cloud, vid, "in-use")
        path = volume_path(cloud, vid)
        with open(path, "r+b") as fh:
            for _ in range(0, GiB, PIECE):
                fh.write(os.urandom(PIECE))
        copy_seconds = timed_copy(path)
        copy_rate = GiB / MiB / copy_seconds

        there, first = cloud.timed_resize(sid, gen2)
        moved_to = volume_path(cloud, vid)
        with open(moved_to, "r+b") as fh:
            for offset, length in CHANGES:
                fh.seek(offset)
                fh.write(os.urandom(length))
        back, second = cloud.timed_resize(sid, gen1)
        cloud.delete(sid)

    print(f"  shutil.copyfile of the volume file  {copy_seconds:6.2f}s  {copy_rate:7.1f} MiB/s "
          "(median of 3)")
    print(line("move to cell2 (all new data)", there, GiB, first, copy_rate))
    print(line("move back, 10 MiB changed", back, GiB, second, copy_rate))
    print(f"  volume: {first['volumes'][0]['from_backend']} -> "
          f"{first['volumes'][0]['to_backend']} -> {second['volumes'][0]['to_backend']}")
    print(load_note())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
