"""Scheduling latency on a cloud of many cells, hosts and servers.

Seeds a state directory with ``transcell dev seed`` (10 cells, 1,000 hosts,
100,000 servers by default; ``--cells/--hosts/--servers`` for another size, or
``--state-dir`` to reuse one already seeded), then times, in this process, the
scheduler the conductor asks (``SchedulerManager.select_destinations``, the
method the scheduler's RPC server dispatches to) for:

- ``build``: a new server of the seeded flavor, any cell (every host fits, so
  Placement returns ``[scheduler] max_placement_results`` candidates);
- ``build, one cell's trait``: the same flavor requiring ``CUSTOM_HW_GEN2``, a
  trait only cell2's hosts have (as the ``gen2.*`` flavors do);
- ``cross-cell resize``: a seeded cell1 server resized to that gen2 flavor,
  with the spec ``move.plan.move_spec`` makes for a resize that may cross cells
  (source host ignored, cross-cell weigher on) and a migration uuid, so the
  claim is the one write that hands the source allocation to the migration;
- ``migrate, may cross cells``: the same server, its own flavor, every host a
  candidate, the cross-cell weigher keeping it in cell1.

Included: reading every cell's compute nodes and services and the aggregates'
metadata, the Placement query through the project's client (Placement's WSGI
app in process, ``DirectTransport``), filters, weighers and the claim in
Placement. Not included: the RPC hop from the conductor (a bus call and its
reply), building the request spec (the API or the move task does that before
asking) and anything after the choice. Every claim is given back after each
timing, untimed: a build's allocation deleted, a move's source allocation
handed back from the migration to the server (as a move's rollback does), and
the moved server's allocation is checked unchanged, so rounds do not drift.

The reference, measured in the same run, alternating round by round: the
Placement query alone, ``GET /allocation_candidates`` with the very arguments
the scheduler passed (recorded in a warm-up request), through the same client.
The ratio scheduler / Placement shows what transcell adds on top. With
``--small-cells`` above 0, the same cases are then timed in a child process on
a small seed (2 cells x 10 hosts by default), to show how scheduling scales.

Seeded hosts never run, so their services' heartbeats are as old as the seed:
``[compute] service_down_time`` is raised for the run so that they count as up.

    .venv/bin/python benchmarks/schedule_scale.py       # ~4 min: seeds, then 20 rounds a case
    .venv/bin/python benchmarks/schedule_scale.py --state-dir DIR --rounds 50
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid as uuidlib
from collections.abc import Callable
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import harness  # noqa: E402

TRAIT = "CUSTOM_HW_GEN2"  # cell2's hosts have it, and only they


def _setup(state_dir: str) -> None:
    from transcell.conf import CONF
    from transcell.placement import client, embedded
    from transcell.registry import services

    CONF([], project="transcell", default_config_files=[])
    CONF.set_override("state_dir", state_dir)
    CONF.set_override("service_down_time", 10 ** 9, group="compute")
    services.placement = client.PlacementClient(
        client.DirectTransport(embedded.load_app(embedded.database_url())))


class Recorder:
    """Wraps the client's candidates query: keeps the scheduler's arguments and the time
    each call took, so the reference replays exactly what the scheduler sent."""

    def __init__(self, placement: Any) -> None:
        self.placement = placement
        self.original = placement.get_allocation_candidates
        self.last: tuple[tuple, dict] | None = None
        self.seconds = 0.0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.last = (args, kwargs)
        started = time.perf_counter()
        try:
            return self.original(*args, **kwargs)
        finally:
            self.seconds = time.perf_counter() - started


def _timed(fn: Callable[[], Any]) -> tuple[float, float, Any]:
    started, cpu = time.perf_counter(), time.process_time()
    result = fn()
    return (time.perf_counter() - started) * 1000, (time.process_time() - cpu) * 1000, result


def _cases() -> list[tuple[str, Callable[[], tuple[Callable[[], Any], Callable[[], None]]]]]:
    """Each case: a name and a maker of (the timed call, the untimed undo)."""
    from sqlalchemy import select

    from transcell import cell as cells
    from transcell.compute import instance as inst
    from transcell.context import RequestContext
    from transcell.db import cell_models as cm
    from transcell.db.session import cell_session
    from transcell.move import plan
    from transcell.registry import services
    from transcell.scheduler.manager import SchedulerManager
    from transcell.seed import _flavor

    manager = SchedulerManager()
    ctx = RequestContext.admin()
    flavor = _flavor()
    gen2 = {**flavor, "name": "seed.gen2",
            "extra_specs": {**(flavor.get("extra_specs") or {}), f"trait:{TRAIT}": "required"}}
    cell1 = next(c for c in cells.list_cells(include_cell0=False) if c.name == "cell1")
    with cell_session(cell1) as s:
        first = s.scalar(select(cm.Instance.uuid).where(cm.Instance.deleted == 0)
                         .order_by(cm.Instance.id).limit(1))
    server = inst.get(cell1, first)
    held = services.placement.get_allocations(server["uuid"])["allocations"]

    def build(wanted: dict) -> tuple[Callable[[], Any], Callable[[], None]]:
        uuid = str(uuidlib.uuid4())
        spec = {"instance_uuid": uuid, "project_id": "seed-project-0",
                "user_id": "seed-user-0", "flavor": wanted, "image": {"id": "seed"},
                "availability_zone": None, "ignore_hosts": [], "requested_destination": None,
                "num_instances": 1, "is_bfv": False, "scheduler_hints": {}}
        return (lambda: manager.select_destinations(ctx, spec, uuid),
                lambda: services.placement.delete_allocations(uuid))

    def move(wanted: dict) -> tuple[Callable[[], Any], Callable[[], None]]:
        migration = str(uuidlib.uuid4())
        spec = plan.move_spec(server, cell1.uuid, wanted, None, True, [server["host"]])

        def undo() -> None:
            services.placement.move_allocations(migration, server["uuid"],
                                                consumer_type="INSTANCE")
            now = services.placement.get_allocations(server["uuid"])["allocations"]
            if {rp: a["resources"] for rp, a in now.items()} != \
                    {rp: a["resources"] for rp, a in held.items()}:
                raise SystemExit(f"the moved server's allocation drifted: {now} != {held}")
        return (lambda: manager.select_destinations(ctx, spec, server["uuid"],
                                                    migration_uuid=migration), undo)

    return [("build", lambda: build(flavor)),
            ("build, one cell's trait", lambda: build(gen2)),
            ("cross-cell resize", lambda: move(gen2)),
            ("migrate, may cross cells", lambda: move(flavor))]


def measure(state_dir: str, rounds: int) -> dict[str, dict[str, list[float]]]:
    """Per case: wall and CPU ms of the scheduler, of its own Placement call, and of the
    reference query replayed alone; plus the cell the choice landed in."""
    from transcell.registry import services

    _setup(state_dir)
    placement = services.placement
    recorder = Recorder(placement)
    placement.get_allocation_candidates = recorder
    results: dict[str, dict[str, list[float]]] = {}
    try:
        for name, make in _cases():
            queries = []
            for _ in range(3):  # warm caches and pools; record the query
                call, undo = make()
                _, _, chosen = _timed(call)
                undo()
                queries.append(recorder.last)
            args, kwargs = queries[-1]
            reference = functools.partial(recorder.original, *args, **kwargs)
            out: dict[str, Any] = {k: [] for k in ("wall", "cpu", "in_sched", "ref_wall",
                                                   "ref_cpu")}
            out["cell"] = chosen[0]["cell_uuid"]
            out["candidates"] = len(reference()[0])
            for _ in range(rounds):
                call, undo = make()
                wall, cpu, chosen = _timed(call)
                undo()
                out["wall"].append(wall)
                out["cpu"].append(cpu)
                out["in_sched"].append(recorder.seconds * 1000)
                wall, cpu, _ = _timed(reference)
                out["ref_wall"].append(wall)
                out["ref_cpu"].append(cpu)
            results[name] = out
    finally:
        del placement.get_allocation_candidates
    from transcell import cell as cells
    names = {c.uuid: c.name for c in cells.list_cells(include_cell0=False)}
    for out in results.values():
        out["cell"] = names.get(out["cell"], out["cell"])
    return results


def _report(title: str, results: dict) -> None:
    p50, p90 = statistics.median, lambda v: harness.percentile(v, 90)
    print(f"\n{title} (ms)")
    print(f"{'case':26} {'cands':>5} {'lands':>6} {'p50':>7} {'p90':>7} {'CPU p50':>7} "
          f"{'its GET':>7} {'ref p50':>7} {'ref CPU':>7} {'x ref':>6}")
    for name, out in results.items():
        print(f"{name:26} {out['candidates']:5d} {out['cell']:>6} {p50(out['wall']):7.1f} "
              f"{p90(out['wall']):7.1f} {p50(out['cpu']):7.1f} {p50(out['in_sched']):7.1f} "
              f"{p50(out['ref_wall']):7.1f} {p50(out['ref_cpu']):7.1f} "
              f"{p50(out['wall']) / p50(out['ref_wall']):5.2f}x")


def main() -> int:
    parser = harness.scale_parser(__doc__.splitlines()[0])
    parser.add_argument("--small-cells", type=int, default=2,
                        help="cells of the small seed timed for comparison (0: none)")
    parser.add_argument("--small-hosts", type=int, default=20)
    parser.add_argument("--small-servers", type=int, default=200)
    parser.add_argument("--json", action="store_true",
                        help="measure --state-dir only and print the figures as JSON")
    args = parser.parse_args()

    if args.json:
        print(json.dumps(measure(args.state_dir, args.rounds)))
        return 0
    print(harness.machine())
    print(harness.load_note())
    own = args.state_dir is None
    state_dir = args.state_dir or tempfile.mkdtemp(prefix="schedule-scale-")
    small_dir = tempfile.mkdtemp(prefix="schedule-small-")
    try:
        if own:
            took = harness.seed(state_dir, args.cells, args.hosts, args.servers)
            print(f"seeded {args.cells} cells, {args.hosts} hosts, {args.servers} servers "
                  f"in {took:.1f} s")
        big = measure(state_dir, args.rounds)
        small = None
        if args.small_cells:
            harness.seed(small_dir, args.small_cells, args.small_hosts, args.small_servers)
            out = subprocess.run([sys.executable, os.path.abspath(__file__), "--json",
                                  "--state-dir", small_dir, "--rounds", str(args.rounds)],
                                 check=True, capture_output=True, text=True).stdout
            small = json.loads(out.strip().splitlines()[-1])
        _report(f"select_destinations, {args.cells} cells, {args.hosts} hosts, "
                f"{args.servers} servers, {args.rounds} rounds a case", big)
        print("  cands: allocation candidates Placement returned; lands: the cell chosen; "
              "its GET: the scheduler's own Placement query;\n  ref: the same query alone "
              "(same client, same run); x ref: scheduler p50 / ref p50")
        if small is not None:
            _report(f"the same at {args.small_cells} cells, {args.small_hosts} hosts, "
                    f"{args.small_servers} servers", small)
            print("\nlarge / small, p50 wall (CPU):")
            p50 = statistics.median
            for name, out in big.items():
                other = small[name]
                print(f"  {name:26} {p50(out['wall']) / p50(other['wall']):5.1f}x "
                      f"({p50(out['cpu']) / p50(other['cpu']):5.1f}x)")
        print(harness.load_note())
    finally:
        shutil.rmtree(small_dir, ignore_errors=True)
        harness.drop_state(state_dir, own, args.keep)
    return 0


if __name__ == "__main__":
    sys.exit(main())
