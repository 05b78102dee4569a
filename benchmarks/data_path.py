"""Where a move's data path spends its time, stage by stage, against a plain copy.

A disk holding ``--data-mib`` of random data (the rest of ``--disk-mib`` holes) is
carried the way a cross-cell move carries it in the embedded layout, without the
rest of the cloud: the source's upload into a chunk store (read -> hash -> store)
and the target's rebuild from it (fetch -> verify -> write), both through
``transcell.image.pipeline``. Each is run with one worker (no overlap) and with
the default pool; the rebuild also with every chunk re-hashed (no sealed chunk
files), to show what the seal saves. The reference is ``shutil.copyfile`` of a
file holding the same bytes, and sha256 on one core, both measured in the same
run. Stages are those of the median run, summed over its workers.

    .venv/bin/python benchmarks/data_path.py [--data-mib 512] [--disk-format qcow2|raw]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import tempfile
import time

from harness import MiB, load_note, machine, timed_copy

from transcell.compute import snapshot
from transcell.compute.virt import disk
from transcell.context import RequestContext
from transcell.image import pipeline
from transcell.image.service import ImageService
from transcell.image.store import ChunkStore

PIECE = 64 * MiB


def sha256_rate() -> float:
    """MiB/s of sha256 on one core, on 4 MiB buffers (a chunk)."""
    data = os.urandom(4 * MiB)
    started = time.perf_counter()
    for _ in range(64):
        hashlib.sha256(data).digest()
    return 256 / (time.perf_counter() - started)


def make_disk(directory: str, fmt: str, disk_size: int, data: int) -> str:
    path = os.path.join(directory, f"disk.{fmt}")
    disk.create_blank(path, disk_size, fmt)
    for offset in range(0, data, PIECE):
        disk.guest_write(path, offset, os.urandom(min(PIECE, data - offset)), fmt)
    return path


def upload(service: ImageService, path: str, fmt: str, spool: bool = False
           ) -> tuple[float, dict]:
    ctx = RequestContext.admin()
    image = service.create(ctx, disk_format="raw", container_format="bare")
    os.sync()
    started = time.perf_counter()
    if fmt == "raw":
        stats = service.upload_file(ctx, image["id"], path, hash_algo="sha256-chunks")
    else:
        size, items = snapshot.whole_items(path, fmt, service.store.chunk_size)
        stats = service.upload_chunks(ctx, image["id"], items, size, spool=spool)
    stats["image_id"] = image["id"]
    return time.perf_counter() - started, stats


def rebuild(service: ImageService, image_id: str, dest: str, take: bool = False
            ) -> tuple[float, dict]:
    os.sync()
    started = time.perf_counter()
    stats = service.download_to_file(RequestContext.admin(), image_id, dest, take=take)
    seconds = time.perf_counter() - started
    os.unlink(dest)
    return seconds, stats


def stages(stats: dict) -> str:
    return ", ".join(f"{name} {s['seconds']:.2f}s/{s['bytes'] / MiB:.0f} MiB"
                     for name, s in sorted(stats.get("stages", {}).items()))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-mib", type=int, default=512)
    parser.add_argument("--disk-mib", type=int, default=1024)
    parser.add_argument("--disk-format", choices=("qcow2", "raw"), default="qcow2")
    parser.add_argument("--runs", type=int, default=3, help="median of this many runs")
    args = parser.parse_args()
    data = args.data_mib * MiB
    print(f"data path: {args.data_mib} MiB of random data on a {args.disk_mib} MiB "
          f"{args.disk_format} disk, on {machine()}, {pipeline.WORKERS} workers")
    root = tempfile.mkdtemp(prefix="transcell-datapath-")
    try:
        path = make_disk(root, args.disk_format, args.disk_mib * MiB, data)
        # the reference copies a file of exactly the bytes the move must carry
        reference = os.path.join(root, "reference.raw")
        with open(reference, "wb") as out:
            out.write(disk.guest_read(path, 0, data, args.disk_format))
        copy = timed_copy(reference, runs=args.runs)
        copy_rate = os.path.getsize(reference) / MiB / copy
        os.unlink(reference)
        sha = sha256_rate()
        results: dict[str, list[tuple[float, dict]]] = {}
        dest = os.path.join(root, "target.raw")
        default_workers = pipeline.WORKERS
        for _ in range(args.runs):
            for label, workers in (("1 worker", 1), (f"{default_workers} workers",
                                                     default_workers)):
                pipeline.WORKERS = workers
                store_dir = os.path.join(root, "store")
                service = ImageService(ChunkStore(store_dir))
                up, up_stats = upload(service, path, args.disk_format)
                down, down_stats = rebuild(service, up_stats["image_id"], dest)
                service.store._seals.clear()  # as if the store were on another host
                verify, verify_stats = rebuild(service, up_stats["image_id"], dest)
                for key, value, stats in (
                        (f"upload, {label}", up, up_stats),
                        (f"rebuild from sealed chunks, {label}", down, down_stats),
                        (f"rebuild re-hashing every chunk, {label}", verify, verify_stats),
                        (f"move (upload + sealed rebuild), {label}", up + down, {})):
                    results.setdefault(key, []).append((value, stats))
                shutil.rmtree(store_dir)
            if args.disk_format == "qcow2":
                # a move's image spooled as the disk, which the target takes by rename
                service = ImageService(ChunkStore(store_dir))
                up, up_stats = upload(service, path, args.disk_format, spool=True)
                down, down_stats = rebuild(service, up_stats["image_id"], dest, take=True)
                label = f"{default_workers} workers"
                for key, value, stats in (
                        (f"upload into a spool, {label}", up, up_stats),
                        ("take-over of the spool (rename)", down, down_stats),
                        (f"move (spooled upload + take-over), {label}", up + down, {})):
                    results.setdefault(key, []).append((value, stats))
                shutil.rmtree(store_dir)
        pipeline.WORKERS = default_workers
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"\n  shutil.copyfile of the same bytes  {copy:6.3f}s  {copy_rate:7.0f} MiB/s "
          f"(median of {args.runs})")
    print(f"  sha256 on one core                          {sha:7.0f} MiB/s")
    for key, runs in results.items():
        runs.sort(key=lambda run: run[0])
        seconds, stats = runs[len(runs) // 2]  # the median run, and its own stages
        rate = args.data_mib / seconds
        print(f"  {key:<44} {seconds:6.3f}s  {rate:7.0f} MiB/s  "
              f"{rate / copy_rate:5.2f} x copy")
        if stats:
            print(f"      stages (summed over workers): {stages(stats)}")
    print(load_note())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
