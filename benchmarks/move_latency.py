"""How long a user waits for a move, and for its ending, as the API shows it.

On a cloud of 2 cells x 1 host with the fake driver, one server on the
default image goes back and forth between the cells. Each round trip makes
two resizes (request -> VERIFY_RESIZE), one revert and one confirm (request
-> ACTIVE). The disk holds only the base image, whose chunks the store
already has, so the figures are the cost of the move's control path: the
saga's steps, both cells' databases, placement, ports and the hosts'
handling of an almost empty disk.

The reference, measured in the same run, is a boot (POST /servers -> ACTIVE)
of the same flavor: the other thing a user waits for that builds a guest.

    .venv/bin/python benchmarks/move_latency.py [--rounds 20]
"""

from __future__ import annotations

import argparse
import statistics
import time

from harness import COMPUTE, load_note, machine, percentile, running_cloud, summary

GEN1, GEN2 = "gen1.small", "gen2.small"


def timed(cloud, server_id: str, body: dict, expect: int, status: str) -> float:
    started = time.monotonic()
    cloud.action(server_id, body, expect)
    cloud.wait_status(server_id, status)
    return time.monotonic() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20,
                        help="round trips; each makes 2 resizes, 1 confirm and 1 revert")
    parser.add_argument("--boots", type=int, default=10, help="reference boots")
    parser.add_argument("--keep", action="store_true", help="keep the state directory")
    args = parser.parse_args()
    print(f"move latency on {machine()}")
    with running_cloud(cells=2, hosts_per_cell=1, keep=args.keep) as cloud:
        flavors = {name: cloud.flavor_id(name) for name in (GEN1, GEN2)}
        poll = []
        for _ in range(20):
            started = time.monotonic()
            cloud.request("GET", f"{COMPUTE}/servers/detail?limit=1")
            poll.append(time.monotonic() - started)
        print(f"polling: every 20 ms; one GET of a server takes "
              f"{statistics.median(poll) * 1000:.1f} ms (median), the timing resolution")

        boots = []
        for i in range(args.boots):
            started = time.monotonic()
            found = cloud.boot(f"ref-{i}", flavors[GEN1])
            boots.append(time.monotonic() - started)
            cloud.delete(found["id"])

        server = cloud.boot("mover", flavors[GEN1])
        sid = server["id"]
        resizes: list[float] = []
        confirms: list[float] = []
        reverts: list[float] = []
        migrations: list[str] = []
        here, there = GEN1, GEN2
        wall = time.monotonic()
        for _ in range(args.rounds):
            resizes.append(timed(cloud, sid, {"resize": {"flavorRef": flavors[there]}}, 202,
                                 "VERIFY_RESIZE"))
            migrations.append(cloud.migration_uuid(sid))
            reverts.append(timed(cloud, sid, {"revertResize": None}, 202, "ACTIVE"))
            cloud.wait_move_ended(migrations[-1])
            resizes.append(timed(cloud, sid, {"resize": {"flavorRef": flavors[there]}}, 202,
                                 "VERIFY_RESIZE"))
            migrations.append(cloud.migration_uuid(sid))
            confirms.append(timed(cloud, sid, {"confirmResize": None}, 204, "ACTIVE"))
            cloud.wait_move_ended(migrations[-1])
            here, there = there, here
        wall = time.monotonic() - wall
        reports = [cloud.migration_show(m) for m in migrations]
        cloud.delete(sid)
        vanished, polls = cloud.vanished, cloud.polls

    boot = statistics.median(boots)
    print(f"\n{len(resizes)} resizes, {len(confirms)} confirms, {len(reverts)} reverts "
          f"in {wall:.0f}s; every move crossed cells")
    print(f"  boot (reference)          {summary(boots)}")
    for name, values in (("resize -> VERIFY_RESIZE", resizes), ("confirm -> ACTIVE", confirms),
                         ("revert -> ACTIVE", reverts)):
        ratio = statistics.median(values) / boot
        print(f"  {name:<25} {summary(values)}  = {ratio:.2f} x boot")

    print("\nwhere a resize's time goes (median of the saga's steps, migration show):")
    steps = [step["name"] for step in reports[0]["steps"]]
    total = statistics.median(sum(r["phases_seconds"].values()) for r in reports)
    for step in steps:
        values = [r["phases_seconds"].get(step, 0.0) for r in reports]
        print(f"  {step:<12} median {statistics.median(values):.3f}s  "
              f"p90 {percentile(values, 90):.3f}s")
    print(f"  {'all steps':<12} median {total:.3f}s "
          f"(the rest of request -> VERIFY_RESIZE is the API, the cast and the polling)")
    for key in ("flatten", "upload", "download", "verify"):
        values = [r["host_seconds"][key] for r in reports if r["host_seconds"][key] is not None]
        if values:
            print(f"    host {key:<8} median {statistics.median(values):.3f}s")
    downtime = [r["downtime_seconds"] for r in reports if r["downtime_seconds"] is not None]
    uploaded = [r["bytes_uploaded"] or 0 for r in reports]
    print(f"  guest downtime median {statistics.median(downtime):.3f}s; "
          f"bytes uploaded per move median {statistics.median(uploaded):.0f} "
          f"of a {reports[0]['disk_size'] / 2**30:.0f} GiB disk")
    if vanished:
        print(f"  the server answered 404 to {vanished} of {polls} polls while it was being "
              "moved (it existed throughout)")
    print(load_note())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
