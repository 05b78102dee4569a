"""Draining a cell of many servers: servers moved per second against the drain's concurrency.

Starts ``transcell up`` (two cells of ``--hosts-per-cell`` fake hosts, real
qcow2 disks), boots ``--servers`` servers into cell1 through the compute API
(``min_count``/``max_count`` in batches, a 1 GiB flavor, no network), so every
one has a guest and a root disk on its host as a built server does. Then it
drains the cell holding them, once per ``--concurrency`` value, alternating
cell1 -> cell2 -> cell1 (each drain moves every server), and once more with
``--bandwidth`` to show that the cap on data in flight holds. For each drain:
seconds, servers moved per second, MiB/s of disk data sent, failures, the most
moves and the most disk MiB seen in flight, and the ratio of its servers/s to
the drain at concurrency 1 of the same run (the reference; the first value of
``--concurrency``).

    .venv/bin/python benchmarks/drain_scale.py        # 100 servers: 8 min at load 5
    .venv/bin/python benchmarks/drain_scale.py --servers 1000 --concurrency 16,64 --bandwidth 0
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import COMPUTE, MiB, load_note, machine, running_cloud  # noqa: E402

DRAINS = f"{COMPUTE}/os-transcell-drains"
IN_FLIGHT = ("starting", "moving", "confirming")


def host_options(args: argparse.Namespace) -> dict[str, dict[str, object]]:
    """Hosts big enough to hold every server on one cell (the fake hosts' sizes are
    settings)."""
    per_host = -(-args.servers // args.hosts_per_cell)
    return {"compute": {"vcpus": max(16, per_host), "cpu_allocation_ratio": 1.0,
                        "memory_mb": max(32768, per_host * 64), "ram_allocation_ratio": 1.0,
                        "disk_gb": max(500, per_host * 2), "disk_allocation_ratio": 1.0}}


def boot_all(cloud, args: argparse.Namespace) -> None:
    """``--servers`` ACTIVE servers on cell1, through the API in batches of ``--batch``."""
    project = cloud.request("GET", "/identity/v3/auth/tokens",
                            headers={"X-Subject-Token": cloud.token()}).json()[
        "token"]["project"]["id"]
    cloud.request("PUT", f"{COMPUTE}/os-quota-sets/{project}",
                  json={"quota_set": {"instances": -1, "cores": -1, "ram": -1}})
    body = {"flavor": {"name": "drain.tiny", "ram": 64, "vcpus": 1, "disk": 1}}
    flavor = cloud.request("POST", f"{COMPUTE}/flavors", json=body).json()["flavor"]["id"]
    image = cloud.default_image()
    started, made = time.monotonic(), 0
    while made < args.servers:
        count = min(args.batch, args.servers - made)
        body = {"server": {"name": f"d{made:05d}", "flavorRef": flavor, "imageRef": image,
                           "networks": "none", "availability_zone": "cell1",
                           "min_count": count, "max_count": count}}
        cloud.request("POST", f"{COMPUTE}/servers", version="2.37", json=body,
                      expect=(202,))
        made += count
        wait_built(cloud, made)
    print(f"booted {made} servers on cell1 in {time.monotonic() - started:.1f} s")


def wait_built(cloud, count: int, timeout: float = 1800) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        states, marker = [], ""
        while True:  # a page is at most 1,000 servers
            page = cloud.request("GET", f"{COMPUTE}/servers/detail?limit=1000&all_tenants=1"
                                 f"{marker}").json()["servers"]
            states += [s["status"] for s in page]
            if len(page) < 1000:
                break
            marker = f"&marker={page[-1]['id']}"

        if "ERROR" in states:
            raise RuntimeError(f"{states.count('ERROR')} servers went to ERROR")
        if states.count("ACTIVE") >= count and len(states) >= count:
            return
        time.sleep(1.0)
    raise RuntimeError("the servers were not built in time")


def drain(cloud, cell: str, concurrency: int, bandwidth: float | None) -> dict:
    body = {"cell": cell, "concurrency": concurrency, "per_source_host": concurrency,
            "per_target_host": concurrency}
    if bandwidth:
        body["bandwidth_mib_s"] = bandwidth
    started = time.monotonic()
    found = cloud.request("POST", DRAINS, json={"drain": body},
                          expect=(202,)).json()["drain"]
    accepted = time.monotonic() - started
    most_moves, most_mib, polls, poll_seconds = 0, 0.0, 0, 0.0
    while found["status"] != "done":
        time.sleep(0.5)
        polled = time.monotonic()
        found = cloud.request("GET", f"{DRAINS}/{found['id']}").json()["drain"]
        poll_seconds += time.monotonic() - polled
        polls += 1
        flying = [s for s in found["servers"] if s["state"] in IN_FLIGHT]
        most_moves = max(most_moves, len(flying))
        # a move not yet measured by its saga counts at its flavor's 1 GiB
        most_mib = max(most_mib, sum(s.get("disk_size") or 1024 * MiB for s in flying) / MiB)
    seconds = time.monotonic() - started
    progress = found["progress"]
    return {"cell": cell, "concurrency": concurrency, "bandwidth": bandwidth,
            "seconds": seconds, "accepted": accepted, "moved": progress["moved"],
            "failed": progress["failed"], "mib": progress["bytes_moved"] / MiB,
            "most_moves": most_moves, "most_mib": most_mib,
            "poll_ms": 1000 * poll_seconds / max(1, polls),
            "errors": sorted({s["error"] for s in found["servers"] if s["error"]})[:3]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--servers", type=int, default=100)
    parser.add_argument("--concurrency", default="1,4,16,64",
                        help="comma-separated; the first is the reference")
    parser.add_argument("--bandwidth", type=float, default=4096.0,
                        help="MiB in flight for the capped drain (each disk is 1 GiB); "
                             "0 skips it")
    parser.add_argument("--bandwidth-concurrency", type=int, default=64)
    parser.add_argument("--hosts-per-cell", type=int, default=4)
    parser.add_argument("--batch", type=int, default=50, help="servers per POST /servers")
    parser.add_argument("--keep", action="store_true", help="keep the state directory")
    args = parser.parse_args()
    levels = [int(c) for c in args.concurrency.split(",") if c]
    print(f"drain scale: {args.servers} servers, 2 cells x {args.hosts_per_cell} hosts, "
          f"on {machine()}")
    runs = []
    with running_cloud(cells=2, hosts_per_cell=args.hosts_per_cell, keep=args.keep,
                       options=host_options(args)) as cloud:
        boot_all(cloud, args)
        cell = "cell1"
        plan = [(c, None) for c in levels]
        if args.bandwidth:
            plan.append((args.bandwidth_concurrency, args.bandwidth))
        for concurrency, bandwidth in plan:
            run = drain(cloud, cell, concurrency, bandwidth)
            runs.append(run)
            cap = f", cap {bandwidth:.0f} MiB" if bandwidth else ""
            print(f"drained {cell} at concurrency {concurrency}{cap}: {run['moved']} moved, "
                  f"{run['failed']} failed in {run['seconds']:.1f} s "
                  f"(POST {run['accepted']:.2f} s, GET {run['poll_ms']:.0f} ms) "
                  f"{'; '.join(run['errors'])}", flush=True)
            cell = "cell2" if cell == "cell1" else "cell1"
    reference = runs[0]["moved"] / runs[0]["seconds"] if runs else 0
    print(f"\n{'drain':14} {'conc':>5} {'cap MiB':>8} {'moved':>6} {'failed':>6} "
          f"{'seconds':>8} {'servers/s':>10} {'MiB/s':>7} {'x conc ' + str(levels[0]):>8} "
          f"{'max moves':>9} {'max MiB in flight':>17}")
    for run in runs:
        rate = run["moved"] / run["seconds"]
        cap = f"{run['bandwidth']:.0f}" if run["bandwidth"] else "-"
        print(f"{run['cell'] + ' ->':14} {run['concurrency']:5d} {cap:>8} {run['moved']:6d} "
              f"{run['failed']:6d} {run['seconds']:8.1f} {rate:10.2f} "
              f"{run['mib'] / run['seconds']:7.2f} {rate / reference:8.2f} "
              f"{run['most_moves']:9d} {run['most_mib']:17.0f}")
    capped = [r for r in runs if r["bandwidth"]]
    for run in capped:
        held = run["most_mib"] <= run["bandwidth"]
        print(f"bandwidth cap {run['bandwidth']:.0f} MiB: at most {run['most_mib']:.0f} MiB "
              f"of disks seen in flight ({'held' if held else 'NOT held'})")
    print(load_note())
    return 0 if all(r["failed"] == 0 for r in runs) and \
        all(r["most_mib"] <= r["bandwidth"] for r in capped) else 1


if __name__ == "__main__":
    raise SystemExit(main())
