"""A running server's downtime during a move, against how fast its guest keeps writing.

A server on a 1 GiB root disk has its first ``--data-mib`` (512) overwritten with
random data, then is moved back and forth between the two cells while a writer
plays its guest: 1 MiB blocks of new random data at random offsets of that data,
at ``--rates`` MiB/s (0 = the guest writes nothing during the move), for as long as
the guest runs at the source. The downtime (guest stopped at the source -> running
at the target) comes from the move's own record, with its pre-copy rounds.

The reference, in the same run, is a second cloud with pre-copy switched off
(``[conductor] precopy_max_rounds = 0``): the guest is stopped for the whole copy,
which is what a move cost before pre-copy and what it costs for a stopped server.

    .venv/bin/python benchmarks/move_downtime.py [--data-mib 512] [--rates 0,16,64]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import threading
import time

from harness import MiB, load_note, machine, running_cloud

from transcell.compute.virt import disk

BLOCK = MiB
PIECE = 64 * MiB


class Guest(threading.Thread):
    """Writes as the guest would while it runs at ``host``: stops once it is stopped."""

    def __init__(self, path: str, data: int, rate_mib: float) -> None:
        super().__init__(daemon=True)
        self.path, self.data, self.rate = path, data, rate_mib
        self.stop = threading.Event()
        self.written = 0
        self.error: BaseException | None = None

    def _running(self) -> bool:
        guest = os.path.join(os.path.dirname(self.path), "guest.json")
        try:
            with open(guest) as fh:
                return json.load(fh).get("power_state") == 1
        except (FileNotFoundError, json.JSONDecodeError):
            return False

    def run(self) -> None:
        try:
            self._write()
        except BaseException as exc:  # reported by the measurement, not lost in a thread
            self.error = exc

    def _write(self) -> None:
        if self.rate <= 0:
            return
        started = time.monotonic()
        rng = random.Random(7)
        while not self.stop.is_set() and self._running():
            due = started + self.written / MiB / self.rate
            if time.monotonic() < due:
                time.sleep(min(0.01, due - time.monotonic()))
                continue
            offset = rng.randrange(0, self.data // BLOCK) * BLOCK
            # no format given: a disk a pre-copy froze has a qcow2 top whatever it was built as
            disk.guest_write(self.path, offset, os.urandom(BLOCK))
            self.written += BLOCK


def fill(path: str, fmt: str, size: int) -> None:
    for offset in range(0, size, PIECE):
        disk.guest_write(path, offset, os.urandom(min(PIECE, size - offset)), fmt)


def measure(label: str, rates: list[float], data: int, options: dict) -> list[dict]:
    results = []
    with running_cloud(options=options) as cloud:
        flavors = [cloud.create_flavor("bench.gen1.1g", 1, "CUSTOM_HW_GEN1"),
                   cloud.create_flavor("bench.gen2.1g", 1, "CUSTOM_HW_GEN2")]
        server = cloud.boot("writer", flavors[0])
        sid, host = server["id"], server["OS-EXT-SRV-ATTR:host"]
        path, fmt = cloud.root_disk(sid, host)
        fill(path, fmt, data)
        for number, rate in enumerate(rates):
            path, _ = cloud.root_disk(sid, host)
            os.sync()
            guest = Guest(path, data, rate)
            guest.start()
            started = time.monotonic()
            cloud.action(sid, {"resize": {"flavorRef": flavors[(number + 1) % 2]}})
            found = cloud.wait_status(sid, "VERIFY_RESIZE")
            seconds = time.monotonic() - started
            guest.stop.set()
            guest.join()
            if guest.error is not None:
                raise RuntimeError(f"the guest's writer failed: {guest.error}")
            migration = cloud.migration_uuid(sid)
            report = cloud.migration_show(migration)
            cloud.action(sid, {"confirmResize": None}, 204)
            cloud.wait_status(sid, "ACTIVE")
            cloud.wait_move_ended(migration)
            host = found["OS-EXT-SRV-ATTR:host"]
            rounds = report.get("precopy_rounds") or []
            results.append({
                "label": label, "rate": rate, "seconds": seconds,
                "downtime": report["downtime_seconds"], "rounds": len(rounds),
                "written": guest.written,
                "precopy_sent": sum(r["bytes_sent"] for r in rounds),
                "after_stop": report.get("chunks_after_stop")})
            print(f"  {label:<9} {rate:5.0f} MiB/s written: move {seconds:6.2f}s, downtime "
                  f"{report['downtime_seconds']:.3f}s, {len(rounds)} pre-copy rounds, "
                  f"{guest.written / MiB:.0f} MiB written by the guest", flush=True)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-mib", type=int, default=512)
    parser.add_argument("--rates", default="0,16,64",
                        help="guest write rates in MiB/s, comma separated")
    args = parser.parse_args()
    data = min(args.data_mib, 1024) * MiB
    rates = [float(r) for r in args.rates.split(",")]
    print(f"downtime against guest writes, {data // MiB} MiB of data, on {machine()}")
    precopy = measure("pre-copy", rates, data, {})
    cold = measure("stopped", [0.0], data, {"conductor": {"precopy_max_rounds": 0}})
    reference = cold[0]["downtime"]
    print(f"\nreference: the guest stopped for the whole move: {reference:.3f}s down "
          f"({cold[0]['seconds']:.2f}s move)")
    print(f"{'write rate':>12} {'downtime':>10} {'/ stopped':>10} {'rounds':>7} "
          f"{'pre-copied':>11} {'chunks after stop':>18}")
    for r in precopy:
        print(f"{r['rate']:>8.0f} MiB/s {r['downtime']:>9.3f}s {r['downtime'] / reference:>9.2f}x "
              f"{r['rounds']:>7} {r['precopy_sent'] / MiB:>8.0f} MiB {r['after_stop']!s:>18}")
    idle = [r for r in precopy if r["rate"] == 0]
    if idle:
        verdict = "met" if idle[0]["downtime"] <= 1.0 else "NOT met"
        print(f"goal: downtime <= 1 s when nothing changes during pre-copy: "
              f"{idle[0]['downtime']:.3f}s, {verdict}")
    print(load_note())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
