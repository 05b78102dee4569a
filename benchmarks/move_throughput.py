"""How fast a move carries a disk full of new data.

A server on a 1 GiB root disk has its first ``--data-mib`` (default all of it)
overwritten with random data (nothing of it is in the store yet; the rest
stays holes), so the move's data path really carries that much: read, hash
and store at the source, fetch, verify and write at the target. It is timed
from the resize request to VERIFY_RESIZE and compared with ``shutil.copyfile``
of a file holding the same bytes, in the same run: the least a host-to-host
copy could cost.

    .venv/bin/python benchmarks/move_throughput.py [--disk-format qcow2|raw] [--data-mib 512]
"""

from __future__ import annotations

import argparse
import os
import time

from harness import MiB, load_note, machine, running_cloud, steps_line, timed_copy

from transcell.compute.virt import disk

#: Random data is written in pieces this big (each is one qemu-io call for qcow2).
PIECE = 64 * MiB


def fill(path: str, fmt: str, size: int) -> None:
    """Overwrite the whole disk as the guest would, with incompressible, unique data."""
    for offset in range(0, size, PIECE):
        disk.guest_write(path, offset, os.urandom(min(PIECE, size - offset)), fmt)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--disk-format", choices=("qcow2", "raw"), default="qcow2",
                        help="how hosts keep root disks (qcow2 is the default of a cloud)")
    parser.add_argument("--keep", action="store_true", help="keep the state directory")
    parser.add_argument("--data-mib", type=int, default=1024,
                        help="MiB of new data written from the start of the 1 GiB disk")
    args = parser.parse_args()
    data = min(args.data_mib, 1024) * MiB
    print(f"move throughput ({args.disk_format} root disks) on {machine()}")
    with running_cloud(disk_format=args.disk_format, keep=args.keep) as cloud:
        old = cloud.create_flavor("bench.gen1.1g", 1, "CUSTOM_HW_GEN1")
        new = cloud.create_flavor("bench.gen2.1g", 1, "CUSTOM_HW_GEN2")
        server = cloud.boot("full-disk", old)
        sid, source = server["id"], server["OS-EXT-SRV-ATTR:host"]
        path, fmt = cloud.root_disk(sid, source)
        started = time.monotonic()
        fill(path, fmt, data)
        print(f"filled {data / MiB:.0f} MiB of the 1 GiB disk with random data in "
              f"{time.monotonic() - started:.1f}s ({fmt} file of "
              f"{os.path.getsize(path) / MiB:.0f} MiB on {source})")

        # the reference copies a file of exactly the bytes the move must carry
        reference = os.path.join(os.path.dirname(path), "reference.raw")
        with open(reference, "wb") as out:
            out.write(disk.guest_read(path, 0, data, fmt))
        copy_seconds = timed_copy(reference)
        copy_size = os.path.getsize(reference)
        os.unlink(reference)

        os.sync()  # the fill's and the copies' writeback is not the move's cost
        started = time.monotonic()
        cloud.action(sid, {"resize": {"flavorRef": new}})
        found = cloud.wait_status(sid, "VERIFY_RESIZE")
        move_seconds = time.monotonic() - started
        migration = cloud.migration_uuid(sid)
        report = cloud.migration_show(migration)
        cloud.action(sid, {"confirmResize": None}, 204)
        cloud.wait_status(sid, "ACTIVE")
        cloud.wait_move_ended(migration)
        cloud.delete(sid)
        vanished, polls = cloud.vanished, cloud.polls

    size = data
    move_rate = size / MiB / move_seconds
    copy_rate = copy_size / MiB / copy_seconds
    print(f"\nmove {source} -> {found['OS-EXT-SRV-ATTR:host']}: {report['disk_size'] / MiB:.0f}"
          f" MiB disk holding {size / MiB:.0f} MiB of data, "
          f"{report['bytes_uploaded'] / MiB:.0f} MiB uploaded, "
          f"{(report['bytes_downloaded'] or 0) / MiB:.0f} MiB written at the target")
    print(f"  move (resize -> VERIFY_RESIZE)  {move_seconds:6.2f}s  {move_rate:7.1f} MiB/s  "
          f"downtime {report['downtime_seconds']:.2f}s")
    print(f"  shutil.copyfile of the disk      {copy_seconds:6.2f}s  {copy_rate:7.1f} MiB/s  "
          f"(median of 3, {copy_size / MiB:.0f} MiB)")
    print(f"  ratio move / copy: {move_rate / copy_rate:.2f} "
          f"(the move takes {move_seconds / copy_seconds:.1f} x the copy's time)")
    print("\nwhere the move's time goes (migration show, seconds):")
    print("  steps: " + steps_line(report))
    for key, seconds in report["host_seconds"].items():
        if seconds:
            print(f"    {key:<8} {seconds:6.2f}s = {size / MiB / seconds:7.1f} MiB/s of data")
    if vanished:
        print(f"  the server answered 404 to {vanished} of {polls} polls while it was being "
              "moved (it existed throughout)")
    print(load_note())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
