"""What a move costs when every service is its own process, against the embedded cloud.

Two clouds of 2 cells x 1 host run side by side: the embedded one (one process,
in-process bus, SQLite) and a distributed one (``up --distributed``: a process
per service, RabbitMQ, PostgreSQL/MariaDB, Keystone). On each, one server moves
gen1.small -> gen2.small and back: every move is a resize to VERIFY_RESIZE and a
confirm to ACTIVE, timed by the client as in move_latency.py. The two clouds'
moves alternate, so whatever else loads the machine weighs on both alike. The
ratio distributed/embedded is the price of the processes, the broker and the
database servers, for the same work.

Then, on each, a new server's first moves are counted rather than timed: every
process of the cloud counts the RPC messages it sends and the SQL it runs
(``TRANSCELL_TALLY_DIR``, see src/transcell/tally.py), and the difference of
the sums before and after the batch, divided by the moves, is the cost of one
move (resize + confirm). Requests one service makes of another's HTTP API
(placement, network, image) are counted too: embedded, Placement is an
in-process app and the network service answers on the bus, so the two clouds
split the same work differently between messages and requests. The client
polls slowly in that batch, and two things that are not the move are
subtracted: the cloud's background work (heartbeats, periodic passes),
measured as a rate over an idle window first, and the client's own status
polls, each costing what one GET of the server costs (measured on the idle
server).

    .venv/bin/python benchmarks/move_distributed.py [--rounds 5] [--count-rounds 2]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from contextlib import ExitStack
from typing import Any

from harness import (
    COMPUTE,
    _configure_reader,
    load_note,
    machine,
    percentile,
    running_cloud,
    summary,
)

from transcell import tally

GEN1, GEN2 = "gen1.small", "gen2.small"
KINDS = ("embedded", "distributed")


def timed(cloud, server_id: str, body: dict, expect: int, status: str,
          poll: float = 0.02) -> float:
    started = time.monotonic()
    cloud.action(server_id, body, expect)
    cloud.wait_status(server_id, status, poll=poll)
    return time.monotonic() - started


def move(cloud, sid: str, flavor: str, poll: float = 0.02) -> tuple[float, float, str]:
    """One resize to VERIFY_RESIZE and its confirm; waits (untimed) until the saga ended."""
    use(cloud)
    resize = timed(cloud, sid, {"resize": {"flavorRef": flavor}}, 202, "VERIFY_RESIZE", poll)
    from transcell.move.saga import Saga
    migration = Saga.latest_for(sid).uuid  # the cloud's database, not an API request
    confirm = timed(cloud, sid, {"confirmResize": None}, 204, "ACTIVE", poll)
    cloud.wait_move_ended(migration)
    return resize, confirm, migration


def reading(directory: str) -> tuple[float, dict[str, Any]]:
    """Totals of every process, complete up to now (each live process wrote since)."""
    now = time.time()
    return now, tally.read_totals(directory, fresh_after=now)


def flat(totals: dict[str, Any]) -> Counter[str]:
    """One counter: "call", "cast", "request <service>" and "<role> <field>".

    The cells' databases are summed as "cells": over a round trip each cell is
    the source of one move and the target of the other, and the client's polls
    read whichever cell the server is in, so only the sum is a move's cost.
    """
    out: Counter[str] = Counter()
    for key, count in totals["messages"].items():
        kind, rest = key.split(" ", 1)
        out[kind if kind != "request" else f"request {rest.split('.', 1)[0]}"] += count
    for role, counts in totals["databases"].items():
        role = "cells" if role.startswith("cell") and role != "cell0" else role
        for field, count in counts.items():
            out[f"{role} {field}"] += count
    return out


def per_second(directory: str, seconds: float) -> Counter[str]:
    t0, before = reading(directory)
    time.sleep(seconds)
    t1, after = reading(directory)
    delta = flat(after)
    delta.subtract(flat(before))
    return Counter({k: v / (t1 - t0) for k, v in delta.items()})


def count_moves(cloud, flavors: dict[str, str], directory: str, rounds: int,
                idle: float) -> dict[str, Any]:
    """Messages and SQL per move, with the background and the client's polls taken out.

    The moves are a new server's first ones: a server's history (its actions and
    their events) travels with it on every move, so a server that moved often
    inserts more rows per move than a new one.
    """
    sid = cloud.boot("counted", flavors[GEN1])["id"]
    time.sleep(5.0)  # what a boot and the delete before it leave running is no background
    background = per_second(directory, idle)
    # one GET of the server, as the polls make it
    gets = 20
    t0, before = reading(directory)
    for _ in range(gets):
        cloud.request("GET", f"{COMPUTE}/servers/{sid}", version="2.53")
    t1, after = reading(directory)
    per_get = flat(after)
    per_get.subtract(flat(before))
    per_get = Counter({k: (v - background[k] * (t1 - t0)) / gets for k, v in per_get.items()})

    polls = cloud.polls
    t0, before = reading(directory)
    moves = 0
    for _ in range(rounds):
        for target in (GEN2, GEN1):
            move(cloud, sid, flavors[target], poll=0.25)
            moves += 1
    time.sleep(2.0)  # casts sent at the end of a confirm are part of the move
    t1, after = reading(directory)
    polls = cloud.polls - polls
    raw = flat(after)
    raw.subtract(flat(before))
    keys = set(raw) | set(background) | set(per_get)
    net = {k: (raw[k] - background[k] * (t1 - t0) - per_get[k] * polls) / moves
           for k in keys}
    methods = tally.difference(after, before)["messages"]
    cloud.delete(sid)
    return {"moves": moves, "seconds": t1 - t0, "polls": polls, "per_move": net, "idle": idle,
            "raw_per_move": {k: raw[k] / moves for k in keys},
            "background_per_second": dict(background), "per_get": dict(per_get),
            "methods_per_move": {k: v / moves for k, v in methods.items()}}


def use(cloud) -> None:
    """Point this process's reads of a cloud's database (the saga) at ``cloud``."""
    global _current
    if _current is not cloud:
        _configure_reader(cloud.state_dir)
        _current = cloud


_current = None


def start(stack: ExitStack, kind: str, args: argparse.Namespace):
    directory = stack.enter_context(
        tempfile.TemporaryDirectory(prefix=f"transcell-tally-{kind}-"))
    started = time.monotonic()
    cloud = stack.enter_context(running_cloud(
        cells=2, hosts_per_cell=1, keep=args.keep, distributed=kind == "distributed",
        env={tally.ENV: directory}))
    cloud.tally_dir = directory
    layout = os.path.join(cloud.state_dir, "distributed.json")
    prefix = ""
    if os.path.exists(layout):
        with open(layout) as fh:
            prefix = f" (databases and vhosts {json.load(fh)['prefix']}*)"
    print(f"{kind}: up in {time.monotonic() - started:.0f}s{prefix}", flush=True)
    return cloud


def run(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """Both clouds at once, their moves interleaved, so load from elsewhere on the
    machine falls on both alike; then each cloud's moves counted, one after the other."""
    results: dict[str, dict[str, Any]] = {kind: {"resizes": [], "confirms": [],
                                                 "migrations": []} for kind in KINDS}
    with ExitStack() as stack:
        clouds = {kind: start(stack, kind, args) for kind in KINDS}
        flavors: dict[str, dict[str, str]] = {}
        servers: dict[str, str] = {}
        for kind, cloud in clouds.items():
            use(cloud)
            flavors[kind] = {name: cloud.flavor_id(name) for name in (GEN1, GEN2)}
            poll = []
            for _ in range(20):
                t0 = time.monotonic()
                cloud.request("GET", f"{COMPUTE}/servers/detail?limit=1")
                poll.append(time.monotonic() - t0)
            results[kind]["get"] = statistics.median(poll)
            servers[kind] = cloud.boot("mover", flavors[kind][GEN1])["id"]
            for _ in range(args.warmup):  # imports, caches, first connections: not timed
                move(cloud, servers[kind], flavors[kind][GEN2])
                move(cloud, servers[kind], flavors[kind][GEN1])
        wall = time.monotonic()
        for n in range(args.rounds):
            for target in (GEN2, GEN1):
                for kind in (KINDS if n % 2 == 0 else KINDS[::-1]):
                    use(clouds[kind])
                    resize, confirm, migration = move(clouds[kind], servers[kind],
                                                      flavors[kind][target])
                    results[kind]["resizes"].append(resize)
                    results[kind]["confirms"].append(confirm)
                    results[kind]["migrations"].append(migration)
        wall = time.monotonic() - wall
        print(f"{2 * args.rounds} timed moves on each, interleaved, in {wall:.0f}s; "
              f"{load_note()}", flush=True)
        for kind, cloud in clouds.items():
            use(cloud)
            results[kind]["reports"] = [cloud.migration_show(m)
                                        for m in results[kind]["migrations"]]
            cloud.delete(servers[kind])
        for kind, cloud in clouds.items():
            use(cloud)
            results[kind]["counted"] = count_moves(
                cloud, flavors[kind], cloud.tally_dir, args.count_rounds,
                args.idle) if args.count_rounds else None
            print(f"{kind}: {2 * args.count_rounds} counted moves; {load_note()}", flush=True)
            results[kind]["vanished"] = cloud.vanished
            results[kind]["polls"] = cloud.polls
    return results


def print_times(results: dict[str, dict[str, Any]]) -> None:
    emb, dist = results["embedded"], results["distributed"]
    print("\none GET of a server (median of 20): embedded "
          f"{emb['get'] * 1000:.1f} ms, distributed {dist['get'] * 1000:.1f} ms; "
          "the client polls every 20 ms")
    for name, key in (("resize -> VERIFY_RESIZE", "resizes"), ("confirm -> ACTIVE", "confirms")):
        ratio = statistics.median(dist[key]) / statistics.median(emb[key])
        print(f"  {name}")
        for kind in KINDS:
            print(f"    {kind:<12} {summary(results[kind][key])}")
        print(f"    distributed / embedded = {ratio:.2f}")

    print("\nwhere a resize's time goes (median of the saga's steps, migration show):")
    print(f"  {'step':<14} {'embedded':>9} {'distributed':>12} {'ratio':>6}")
    steps = [step["name"] for step in emb["reports"][0]["steps"]]
    for step in [*steps, None]:
        medians = []
        for kind in KINDS:
            reports = results[kind]["reports"]
            values = [(sum(r["phases_seconds"].values()) if step is None
                       else r["phases_seconds"].get(step, 0.0)) for r in reports]
            medians.append(statistics.median(values))
        ratio = f"{medians[1] / medians[0]:6.2f}" if medians[0] > 0 else "     -"
        print(f"  {step or 'all steps':<14} {medians[0]:8.3f}s {medians[1]:11.3f}s {ratio}")
    for kind in KINDS:
        totals = [sum(r["phases_seconds"].values()) for r in results[kind]["reports"]]
        print(f"  {kind}: all steps p90 {percentile(totals, 90):.3f}s")


def print_counts(results: dict[str, dict[str, Any]]) -> None:
    counted = {kind: results[kind]["counted"] for kind in KINDS}
    if not all(counted.values()):
        return
    emb, dist = counted["embedded"], counted["distributed"]
    print(f"\nper move (resize + confirm), from {emb['moves']} + {dist['moves']} counted moves, "
          "the background and the client's polls subtracted:")
    print(f"  {'':<26} {'embedded':>9} {'distributed':>12}   (raw: embedded, distributed)")

    def row(label: str, key: str | list[str], always: bool = True) -> None:
        keys = [key] if isinstance(key, str) else key
        net = [sum(counted[k]["per_move"].get(x, 0.0) for x in keys) for k in KINDS]
        raw = [sum(counted[k]["raw_per_move"].get(x, 0.0) for x in keys) for k in KINDS]
        if not always and max(map(abs, net + raw)) < 0.05:
            return
        print(f"  {label:<26} {net[0]:9.1f} {net[1]:12.1f}   ({raw[0]:.1f}, {raw[1]:.1f})")

    row("RPC calls", "call")
    row("RPC casts", "cast")
    services = sorted({key.split(" ")[1] for c in counted.values() for key in c["per_move"]
                       if key.startswith("request ")})
    for service in services:
        row(f"{service} API requests", f"request {service}")
    keys = {key for c in counted.values() for key in c["per_move"]}
    roles = sorted({key.split(" ")[0] for key in keys
                    if key.split(" ")[0] not in ("call", "cast", "request")})
    for role in roles:
        row(f"{role}: statements", f"{role} statements")
        row(f"{role}: commits+rollbacks", [f"{role} commits", f"{role} rollbacks"])
    row("all: statements", [f"{r} statements" for r in roles])
    verbs = sorted({key.split(" verb ", 1)[1] for key in keys if " verb " in key})
    for verb in verbs:
        row(f"  of which {verb}", [f"{r} verb {verb}" for r in roles], always=False)
    row("all: commits+rollbacks", [f"{r} {f}" for r in roles for f in ("commits", "rollbacks")])
    row("all: pool checkouts", [f"{r} checkouts" for r in roles])
    print("  (round trips = statements + commits + rollbacks; on PostgreSQL and MariaDB "
          "each checkout adds a ping)")
    for kind in KINDS:
        c = counted[kind]
        bg = c["background_per_second"]
        print(f"  {kind}: background {bg.get('call', 0) + bg.get('cast', 0):.2f} messages/s, "
              f"{sum(v for k, v in bg.items() if k.endswith(' statements')):.2f} "
              f"statements/s (idle {c['idle']:.0f}s); the counted moves took "
              f"{c['seconds']:.0f}s and {c['polls']} polls of "
              f"{sum(v for k, v in c['per_get'].items() if k.endswith(' statements')):.1f} "
              "statements each")
    print("\nmessages and requests per move by method (distributed; embedded where it "
          "differs; the client's polls and the background are not taken out here):")
    methods = set(emb["methods_per_move"]) | set(dist["methods_per_move"])
    for name in sorted(methods, key=lambda m: (-dist["methods_per_move"].get(m, 0), m)):
        d, e = dist["methods_per_move"].get(name, 0), emb["methods_per_move"].get(name, 0)
        print(f"  {d:6.2f}  {name}" + ("" if abs(d - e) < 1e-9 else f"   (embedded {e:.2f})"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5,
                        help="timed round trips; each is 2 moves (resize + confirm)")
    parser.add_argument("--count-rounds", type=int, default=2,
                        help="counted round trips (2 moves each), after the timed ones")
    parser.add_argument("--warmup", type=int, default=1, help="untimed round trips first")
    parser.add_argument("--idle", type=float, default=20.0,
                        help="seconds of idle cloud to measure the background work")
    parser.add_argument("--keep", action="store_true", help="keep the state directories")
    parser.add_argument("--save", metavar="PATH", help="also write every figure as JSON")
    args = parser.parse_args()
    print(f"move distributed vs embedded on {machine()}", flush=True)
    results = run(args)
    if args.save:
        with open(args.save, "w") as fh:
            json.dump(results, fh, indent=1, default=str)
    print_times(results)
    print_counts(results)
    for kind in KINDS:
        if results[kind]["vanished"]:
            print(f"  {kind}: the server answered 404 to {results[kind]['vanished']} of "
                  f"{results[kind]['polls']} polls while it was being moved")
    print(load_note())
    return 0


if __name__ == "__main__":
    sys.exit(main())
