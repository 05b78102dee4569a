"""``transcell dev seed``: load a state directory with a cloud at scale (see ``seed``)."""

from __future__ import annotations

import argparse
import time


def add_parser(sub, common) -> None:
    dev = sub.add_parser("dev", help="Developer tools: load a cloud at scale for benchmarks")
    common(dev)
    dev_sub = dev.add_subparsers(dest="dev_command", required=True)
    seed = dev_sub.add_parser(
        "seed", help="Bulk-load cells, hosts and ACTIVE servers of the fake driver through "
                     "the project's models (a loader, not the API path: see the README)")
    common(seed)
    seed.add_argument("--cells", type=int, default=10)
    seed.add_argument("--hosts", type=int, default=1000, help="compute hosts in all")
    seed.add_argument("--servers", type=int, default=100000, help="servers in all")
    seed.add_argument("--projects", type=int, default=10)


def cmd_seed(args: argparse.Namespace) -> int:
    from transcell import seed
    from transcell.conf import CONF
    started = time.monotonic()
    try:
        done = seed.seed(args.cells, args.hosts, args.servers, args.projects)
    except ValueError as exc:
        print(f"error: {exc}")
        return 2
    print(f"seeded {CONF.state_dir}: {len(done.cells)} cells, {done.hosts} hosts, "
          f"{done.servers} servers in {len(done.projects)} projects "
          f"({time.monotonic() - started:.1f} s)")
    return 0
