"""What it costs to carry a volume's file to another backend, against a plain ``cp``.

A 1 GiB volume file is filled with random bytes (nothing is a hole, nothing
is in the store yet) and copied the two ways the volume service copies a
volume: through the image store (``send_through_store``, for backends that
share no cell: only chunks the store lacks are sent, the copy is rebuilt
from the store and compared with the source as a whole) and directly
(``copy_direct``, for backends one host reaches: a sparse copy, compared
likewise). Then 10 MiB are changed in the moved copy (ten 1 MiB writes, each
in its own store chunk) and it is carried back, as a volume's next move
would: the store still holds the rest under the volume's kept image. Every
figure stands next to ``cp`` of the same file in the same run.

The image service runs in this process, as it does in the embedded layout
(the volume service's in-process image client), over a chunk store in the
same temporary directory. Nothing is synced, neither by the copies nor by
``cp``; before each timing starts, dirty pages are flushed and a scratch
file is written and deleted (see ``warm_memory``), both untimed. ``cp`` and
the copies read a volume file just written, from the page cache; the second
send also reads the kept chunks of the first from the store, which on a
machine that pages out what it has not used for a while (this one does after
about a minute) may come from the disk, as a volume's chunks from its last
move would. The breakdown of each send says where its time went.

    .venv/bin/python benchmarks/volume_copy.py [--keep]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from typing import Any, NamedTuple

from harness import GiB, MiB, load_note, machine

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "src"))

#: Ten 1 MiB writes, each inside its own 4 MiB store chunk (100 MiB apart).
CHANGES = [(i * 100 * MiB + MiB, MiB) for i in range(10)]
#: Random data is written in pieces this big.
PIECE = 64 * MiB


def fill(path: str, size: int) -> None:
    with open(path, "r+b") as fh:
        for offset in range(0, size, PIECE):
            fh.write(os.urandom(min(PIECE, size - offset)))


def warm_memory(directory: str, size: int = 3 * GiB) -> None:
    """Write and delete a scratch file, so the next step finds free memory ready to use.

    On this kind of virtual machine memory left free for a few seconds goes
    back to the host, and the next write of 1 GiB pays several times a
    copy's cost to get it again. Every timed step (each ``cp`` too) starts
    right after this, so the figures compare the steps' own work.
    """
    path = os.path.join(directory, "warm-up")
    piece = b"\1" * PIECE
    with open(path, "wb") as fh:
        for _ in range(size // PIECE):
            fh.write(piece)
    os.unlink(path)


class Timed(NamedTuple):
    seconds: float
    cpu: float  # user + system seconds of this process and its children, every core
    result: Any = None


def _cpu() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def timed(directory: str, work: Callable[[], Any]) -> Timed:
    os.sync()  # earlier steps' writeback is not this step's cost
    warm_memory(directory)
    cpu, started = _cpu(), time.monotonic()
    result = work()
    return Timed(time.monotonic() - started, _cpu() - cpu, result)


def timed_cp(source: str, runs: int = 3) -> Timed:
    """Median seconds (and CPU seconds) of ``cp`` of ``source`` to a sibling file."""
    runs_ = []
    dest = source + ".cp"
    for _ in range(runs):
        runs_.append(timed(os.path.dirname(source),
                           lambda: subprocess.run(["cp", source, dest], check=True)))
        os.unlink(dest)
    return Timed(statistics.median(r.seconds for r in runs_),
                 statistics.median(r.cpu for r in runs_))


def line(label: str, step: Timed, cp: Timed) -> str:
    rate = GiB / MiB / step.seconds
    cp_rate = GiB / MiB / cp.seconds
    return (f"  {label:<26} {step.seconds:6.2f}s  {rate:7.1f} MiB/s  CPU {step.cpu:5.2f}s  "
            f"sent {step.result['bytes_sent'] / MiB:6.1f} MiB\n"
            f"    ratio {label.split()[0]} / cp: {rate / cp_rate:.2f} "
            f"(takes {step.seconds / cp.seconds:.1f} x the cp's time, "
            f"{step.cpu / cp.cpu:.1f} x its CPU time)")


def timing_client(service: Any) -> Any:
    """The in-process image client, adding up the seconds of the two data calls."""
    from transcell.image.client import ImageClient

    class Timing(ImageClient):
        seconds: dict[str, float] = {}

        def _add(self, key: str, started: float) -> None:
            self.seconds[key] = self.seconds.get(key, 0.0) + time.monotonic() - started

        def upload_chunks(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
            started = time.monotonic()
            try:
                return super().upload_chunks(*args, **kwargs)
            finally:
                self._add("upload", started)

        def download_to_file(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
            started = time.monotonic()
            try:
                return super().download_to_file(*args, **kwargs)
            finally:
                self._add("rebuild", started)

    return Timing(service)


def send(root: str, client: Any, src: str, dst: str, keep: str) -> tuple[Timed, str]:
    """One timed send_through_store, and where its time went."""
    from transcell.volume import data
    client.seconds.clear()
    step = timed(root, lambda: data.send_through_store(
        None, src, dst, str(uuid.uuid4()), keep_image_id=keep))  # its images are its own
    upload, rebuild = client.seconds.get("upload", 0.0), client.seconds.get("rebuild", 0.0)
    where = (f"    upload {upload:.2f}s (read, hash, store what is missing), rebuild "
             f"{rebuild:.2f}s (store reads checked, file written), whole-file check and "
             f"the rest {step.seconds - upload - rebuild:.2f}s")
    return step, where


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args()
    from transcell.conf import CONF
    from transcell.image.service import ImageService
    from transcell.image.store import ChunkStore
    from transcell.registry import services
    from transcell.volume import data

    CONF([], project="transcell", default_config_files=[])
    print(f"volume copy on {machine()}")
    root = tempfile.mkdtemp(prefix="transcell-volume-bench-")
    try:
        store = ChunkStore(os.path.join(root, "store"), CONF.image.chunk_size)
        client = services.image = timing_client(ImageService(store))
        cell1 = os.path.join(root, "local-cell1", "volume-bench")
        cell2 = os.path.join(root, "local-cell2", "volume-bench")
        shared = os.path.join(root, "shared", "volume-bench")
        keep = str(uuid.uuid4())

        data.create_blank(cell1, 1)
        started = time.monotonic()
        fill(cell1, GiB)
        print(f"filled a 1 GiB volume with random data in {time.monotonic() - started:.1f}s "
              f"(store chunks of {CONF.image.chunk_size / MiB:.0f} MiB)")
        cp_new = timed_cp(cell1)
        new_store = send(root, client, cell1, cell2, keep)
        new_direct = timed(root, lambda: data.copy_direct(cell1, shared))
        intact = (new_store[0].result["checksum"] == new_direct.result["checksum"]
                  == data.checksum(cell2))

        # the volume now lives on local-cell2, where the guest changes 10 MiB; it goes back
        # to local-cell1 (or to shared), whose old copy the confirmed move deleted
        os.unlink(cell1)
        os.unlink(shared)
        with open(cell2, "r+b") as fh:
            for offset, length in CHANGES:
                fh.seek(offset)
                fh.write(os.urandom(length))
        cp_changed = timed_cp(cell2)
        changed_store = send(root, client, cell2, cell1, keep)
        changed_direct = timed(root, lambda: data.copy_direct(cell2, shared))
        intact = intact and (changed_store[0].result["checksum"]
                             == changed_direct.result["checksum"] == data.checksum(cell1))
        stored = store.stats()
        data.drop_kept(None, keep)
        leftover = store.stats()["chunks"]
    finally:
        if args.keep:
            print(f"(kept {root})")
        else:
            shutil.rmtree(root, ignore_errors=True)

    verdict = "every copy verified equal to its source" if intact else "COPIES DIFFER"
    for title, cp, (store_step, where), direct_step in (
            ("1 GiB of new data", cp_new, new_store, new_direct),
            (f"{sum(n for _, n in CHANGES) / MiB:.0f} MiB changed since the last move "
             f"({len(CHANGES)} writes of 1 MiB)", cp_changed, changed_store, changed_direct)):
        print(f"\n{title}; cp {cp.seconds:.2f}s = {GiB / MiB / cp.seconds:.1f} MiB/s, "
              f"CPU {cp.cpu:.2f}s (median of 3)")
        print(line("store send_through_store", store_step, cp))
        print(where)
        print(line("direct copy_direct", direct_step, cp))
    print(f"\n{verdict}; the store held {stored['chunks']} chunks "
          f"({stored['bytes_stored'] / MiB:.0f} MiB, the volume's kept image) after both "
          f"sends, {leftover} once it was dropped")
    print(load_note())
    return 0 if intact and leftover == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
