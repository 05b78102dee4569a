"""What a move sends when the disk is mostly its base image: only what changed.

A 1 GiB base image of random bytes is uploaded through the image API, a
server is built from it on a 1 GiB flavor, and 10 MiB of changes are written
into its disk as ten 1 MiB writes spread over the disk. The move then has to
upload only the chunks holding changes; everything else is already in the
store under the base image's chunks. Measured: bytes uploaded against the
disk's size, and the move's time, each against a full copy of the disk's
1 GiB (``shutil.copyfile`` of the host's cached base, which holds exactly
the disk's unchanged content) in the same run.

    .venv/bin/python benchmarks/move_delta.py
"""

from __future__ import annotations

import argparse
import os
import time

from harness import GiB, MiB, load_note, machine, running_cloud, steps_line, timed_copy

#: Ten 1 MiB writes, each inside its own 4 MiB store chunk (100 MiB apart).
CHANGES = [(i * 100 * MiB + MiB, MiB) for i in range(10)]


def make_base(path: str, size: int) -> None:
    """Random bytes, so no two chunks are alike and none is zero: the store dedups nothing."""
    with open(path, "wb") as fh:
        for offset in range(0, size, 64 * MiB):
            fh.write(os.urandom(min(64 * MiB, size - offset)))


def upload_image(cloud, path: str) -> str:
    body = {"name": "bench-base-1g", "disk_format": "raw", "container_format": "bare",
            "visibility": "public"}
    image_id = cloud.request("POST", "/image/v2/images", json=body, expect=(201,)).json()["id"]
    with open(path, "rb") as fh:
        cloud.request("PUT", f"/image/v2/images/{image_id}/file", data=fh, expect=(204,),
                      headers={"Content-Type": "application/octet-stream"})
    return image_id


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", action="store_true", help="keep the state directory")
    args = parser.parse_args()
    print(f"move delta on {machine()}")
    with running_cloud(keep=args.keep) as cloud:
        from transcell.compute.virt import disk
        base_path = os.path.join(cloud.state_dir, "bench-base.raw")
        make_base(base_path, GiB)
        started = time.monotonic()
        image_id = upload_image(cloud, base_path)
        print(f"uploaded a 1 GiB random base image through the image API in "
              f"{time.monotonic() - started:.1f}s")
        os.unlink(base_path)
        old = cloud.create_flavor("bench.gen1.1g", 1, "CUSTOM_HW_GEN1")
        new = cloud.create_flavor("bench.gen2.1g", 1, "CUSTOM_HW_GEN2")
        started = time.monotonic()
        server = cloud.boot("delta", old, image_id)
        sid, source = server["id"], server["OS-EXT-SRV-ATTR:host"]
        print(f"built the server on {source} in {time.monotonic() - started:.1f}s "
              "(its host fetched the base image into its cache)")
        path, fmt = cloud.root_disk(sid, source)
        written = {}
        for offset, length in CHANGES:
            written[offset] = os.urandom(length)
            disk.guest_write(path, offset, written[offset], fmt)
        print(f"wrote {sum(n for _, n in CHANGES) / MiB:.0f} MiB of changes as "
              f"{len(CHANGES)} writes of 1 MiB ({fmt} disk file now "
              f"{os.path.getsize(path) / MiB:.1f} MiB)")

        cached = os.path.join(cloud.state_dir, "hosts", source, "image-cache", image_id)
        copy_seconds = timed_copy(cached)
        copy_size = os.path.getsize(cached)

        def move(flavor: str) -> tuple[float, dict, str, bool]:
            os.sync()  # the fill's and the copies' writeback is not the move's cost
            started = time.monotonic()
            cloud.action(sid, {"resize": {"flavorRef": flavor}})
            found = cloud.wait_status(sid, "VERIFY_RESIZE")
            seconds = time.monotonic() - started
            host = found["OS-EXT-SRV-ATTR:host"]
            migration = cloud.migration_uuid(sid)
            shown = cloud.migration_show(migration)
            moved_path, moved_fmt = cloud.root_disk(sid, host)
            ok = all(disk.guest_read(moved_path, offset, len(data), moved_fmt) == data
                     for offset, data in written.items())
            cloud.action(sid, {"confirmResize": None}, 204)
            cloud.wait_status(sid, "ACTIVE")
            cloud.wait_move_ended(migration)
            return seconds, shown, host, ok

        # first the target has never seen the base image and fetches it whole;
        # then the server moves back to a host that holds the base in its cache
        move_seconds, report, target, intact = move(new)
        back_seconds, back, back_host, back_intact = move(old)
        intact = intact and back_intact
        cloud.delete(sid)
        vanished, polls = cloud.vanished, cloud.polls

    size, sent = report["disk_size"], report["bytes_uploaded"]
    verdict = "changes read back intact" if intact else "CHANGES LOST"
    print(f"\nfirst move {source} -> {target} ({verdict}; the target fetched the base "
          "image into its cache during the move)")
    print(f"  bytes uploaded   {sent / MiB:8.1f} MiB of a {size / MiB:.0f} MiB disk "
          f"= {sent / size:.1%} (a full copy moves {copy_size / MiB:.0f} MiB: "
          f"{copy_size / max(sent, 1):.0f} x more)")
    print(f"  move time        {move_seconds:8.2f}s (resize -> VERIFY_RESIZE), "
          f"downtime {report['downtime_seconds']:.2f}s")
    print(f"  full copy time   {copy_seconds:8.2f}s (shutil.copyfile of the disk's 1 GiB, "
          "median of 3)")
    print(f"  ratio move / copy: bytes {sent / copy_size:.3f}, "
          f"time {move_seconds / copy_seconds:.2f}")
    print("\nwhere the move's time goes (migration show, seconds):")
    print("  steps: " + steps_line(report))
    print(f"  written at the target: {(report['bytes_downloaded'] or 0) / MiB:.0f} MiB "
          "(an overlay on the cached base image plus the chunks that differ)")
    print(f"\nsecond move {target} -> {back_host}, base image already cached at the target:")
    print(f"  bytes uploaded   {back['bytes_uploaded'] / MiB:8.1f} MiB, written at the target "
          f"{(back['bytes_downloaded'] or 0) / MiB:.1f} MiB")
    print(f"  move time        {back_seconds:8.2f}s, downtime {back['downtime_seconds']:.2f}s, "
          f"ratio to the full copy: time {back_seconds / copy_seconds:.2f}")
    print("  steps: " + steps_line(back))
    if vanished:
        print(f"  the server answered 404 to {vanished} of {polls} polls while it was being "
              "moved (it existed throughout)")
    print(load_note())
    return 0 if intact else 1


if __name__ == "__main__":
    raise SystemExit(main())
