"""How fast a move carries a disk full of new data.

A server on a 1 GiB root disk has its first ``--data-mib`` (default all of it)
overwritten with random data (nothing of it is in the store yet; the rest
stays holes), so the move's data path really carries that much: read, hash
and store at the source, fetch, verify and write at the target (or, on the
store's filesystem, take the store's spool over). It is timed from the resize
request (the client's clock) to VERIFY_RESIZE (the conductor's ``moved_at``;
one machine, one clock, as ``move_vs_nova.py`` does) and compared with
``shutil.copyfile`` of a file holding the same bytes, in the same run: the
least a host-to-host copy could cost. The client polls every ``--poll``
seconds (0.25) for the status and that polled span is printed too: polling
every 20 ms took about a third of a core from the move it was timing.

Each of ``--runs`` moves (3) is of a new server filled anew, timed against
its own copy; the medians are shown, and each run's split of the pre-copy
round between the source's upload and the target's build.

    .venv/bin/python benchmarks/move_throughput.py [--disk-format qcow2|raw] [--data-mib 512]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

from harness import MiB, load_note, machine, running_cloud, steps_line, timed_copy

from transcell.compute.virt import disk

#: Random data is written in pieces this big (each is one qemu-io call for qcow2).
PIECE = 64 * MiB


def fill(path: str, fmt: str, size: int) -> None:
    """Overwrite the whole disk as the guest would, with incompressible, unique data."""
    for offset in range(0, size, PIECE):
        disk.guest_write(path, offset, os.urandom(min(PIECE, size - offset)), fmt)


def one_move(cloud, old: str, new: str, data: int, number: int, poll: float) -> dict:
    """Boot, fill and move one server; its figures, the copy's of the same bytes first."""
    server = cloud.boot(f"full-disk-{number}", old)
    sid, source = server["id"], server["OS-EXT-SRV-ATTR:host"]
    path, fmt = cloud.root_disk(sid, source)
    started = time.monotonic()
    fill(path, fmt, data)
    print(f"run {number}: filled {data / MiB:.0f} MiB of the 1 GiB disk with random data in "
          f"{time.monotonic() - started:.1f}s ({fmt} file of "
          f"{os.path.getsize(path) / MiB:.0f} MiB on {source})")

    # the reference copies a file of exactly the bytes the move must carry
    reference = os.path.join(os.path.dirname(path), "reference.raw")
    with open(reference, "wb") as out:
        out.write(disk.guest_read(path, 0, data, fmt))
    copy_seconds = timed_copy(reference)
    copy_size = os.path.getsize(reference)
    os.unlink(reference)

    # the fill's and the copies' writeback is synced first, not counted
    move_seconds, report = cloud.timed_resize(sid, new, poll=poll)
    cloud.delete(sid)
    ratio = (data / move_seconds) / (copy_size / copy_seconds)
    span = report["span"]
    span_ratio = (data / span) / (copy_size / copy_seconds)
    rounds = report.get("precopy_rounds") or []
    split = "; ".join(f"round {r['round']}: upload {r.get('upload_seconds')}s, target "
                      f"{r.get('build_seconds')}s" for r in rounds)
    print(f"  move {source} -> {report['target']['host']} {span:.2f}s "
          f"({data / MiB / span:.0f} MiB/s, downtime {report['downtime_seconds']:.2f}s)"
          f", copy {copy_seconds:.3f}s, ratio {span_ratio:.2f} (polled {move_seconds:.2f}s, "
          f"{ratio:.2f})")
    print("    steps: " + steps_line(report) + (f"\n    pre-copy {split}" if split else ""))
    return {"move": move_seconds, "copy": copy_seconds, "copy_size": copy_size,
            "ratio": ratio, "span": span, "span_ratio": span_ratio, "report": report}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--disk-format", choices=("qcow2", "raw"), default="qcow2",
                        help="how hosts keep root disks (qcow2 is the default of a cloud)")
    parser.add_argument("--keep", action="store_true", help="keep the state directory")
    parser.add_argument("--data-mib", type=int, default=1024,
                        help="MiB of new data written from the start of the 1 GiB disk")
    parser.add_argument("--runs", type=int, default=3,
                        help="moves, each of a new server filled anew; medians are shown")
    parser.add_argument("--distributed", action="store_true",
                        help="every service its own process (up --distributed): the "
                             "hosts reach the image store over HTTP")
    parser.add_argument("--poll", type=float, default=0.25,
                        help="seconds between the client's polls for VERIFY_RESIZE")
    args = parser.parse_args()
    data = min(args.data_mib, 1024) * MiB
    print(f"move throughput ({args.disk_format} root disks"
          f"{', distributed' if args.distributed else ''}) on {machine()}")
    with running_cloud(disk_format=args.disk_format, keep=args.keep,
                       distributed=args.distributed) as cloud:
        old = cloud.create_flavor("bench.gen1.1g", 1, "CUSTOM_HW_GEN1")
        new = cloud.create_flavor("bench.gen2.1g", 1, "CUSTOM_HW_GEN2")
        runs = [one_move(cloud, old, new, data, n + 1, args.poll)
                for n in range(max(1, args.runs))]
        vanished, polls = cloud.vanished, cloud.polls

    move_seconds = statistics.median(r["move"] for r in runs)
    span_seconds = statistics.median(r["span"] for r in runs)
    copy_seconds = statistics.median(r["copy"] for r in runs)
    report = runs[0]["report"]
    print(f"\nmedian of {len(runs)} moves of a {report['disk_size'] / MiB:.0f} MiB disk holding "
          f"{data / MiB:.0f} MiB of data ({report['bytes_uploaded'] / MiB:.0f} MiB uploaded, "
          f"{(report['bytes_downloaded'] or 0) / MiB:.0f} MiB written at the target):")
    print(f"  move (request -> VERIFY_RESIZE) {span_seconds:6.2f}s  "
          f"{data / MiB / span_seconds:7.1f} MiB/s  (the conductor's clock at VERIFY_RESIZE)")
    print(f"  as polled every {args.poll:g}s     {move_seconds:6.2f}s  "
          f"{data / MiB / move_seconds:7.1f} MiB/s")
    print(f"  shutil.copyfile of the same bytes {copy_seconds:6.3f}s  "
          f"{runs[0]['copy_size'] / MiB / copy_seconds:7.1f} MiB/s  (median of 3 each run)")
    each = ", ".join(f"{r['span_ratio']:.2f}" for r in runs)
    print(f"  ratio move / copy: median {statistics.median(r['span_ratio'] for r in runs):.2f} "
          f"(runs {each}; goal at least 0.25; polled "
          f"{statistics.median(r['ratio'] for r in runs):.2f})")
    if vanished:
        print(f"  the server answered 404 to {vanished} of {polls} polls while it was being "
              "moved (it existed throughout)")
    print(load_note())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
