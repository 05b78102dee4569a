"""The control plane of a cross-cell resize, against Nova's own, timed in one run.

Nova's reference is its functional test of cross-cell resize and cold
migration (``test_cross_cell_migrate.py``, Nova 34.0.0 with its fake driver
and in-memory databases), timed by the anchor under ``shared/anchors/nova``:
the median, over the tests whose move crossed cells, of "resize or migrate
API call -> the conductor's migrate_server done", which is the server
reaching VERIFY_RESIZE. Nova moves no disk bytes there, so the comparison is
of everything else: API, scheduling, Placement, both cells' databases, RPC
and the hosts' handling of a disk with nothing to send.

Ours is timed two ways, for one server on the default image going back and
forth between the cells (as ``move_latency.py`` does); its disk holds only the
base image, so nothing is uploaded and what is timed is the move's control
path. The same span as Nova's: the client's wall clock when it sends the
resize request -> the conductor's wall clock when the move reached MOVED (the
saga's ``moved_at``; one machine, one clock), which counts the HTTP request
but, like Nova's, no polling. And as a client sees it: request ->
VERIFY_RESIZE by polling every 20 ms, which adds half a poll and a GET. The
goal is 0.25x of Nova's median (0.1x the stretch goal), judged on the same
span; the polled ratio is printed beside it. The saga's per-step medians show
where the time goes.

    .venv/bin/python benchmarks/move_vs_nova.py [--rounds 10]
    .venv/bin/python benchmarks/move_vs_nova.py --phases RESULTS/phases.jsonl  # reuse a run

The anchor must have been set up once (``shared/anchors/nova/setup.sh``);
running it takes about two minutes and runs before ours, not at the same time.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import time

from harness import load_note, machine, percentile, running_cloud, summary

GEN1, GEN2 = "gen1.small", "gen2.small"
GOAL, STRETCH = 0.25, 0.1
DEFAULT_ANCHOR = os.environ.get(
    "TRANSCELL_NOVA_ANCHOR",
    os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared",
                 "anchors", "nova"))


def anchor_dir(given: str | None) -> str:
    for path in (given, DEFAULT_ANCHOR, "/work/shared/anchors/nova"):
        if path and os.path.isfile(os.path.join(path, "run.sh")):
            return os.path.abspath(path)
    raise SystemExit("the Nova anchor (run.sh, resize_median.py) was not found; "
                     "pass --anchor DIR or set TRANSCELL_NOVA_ANCHOR")


def run_anchor(anchor: str) -> str:
    """Run Nova's phase timing; returns its phases.jsonl."""
    print(f"running Nova's cross-cell tests ({anchor}/run.sh eventlet --skip-full), "
          "about 2 minutes ...", flush=True)
    out = subprocess.run(["bash", os.path.join(anchor, "run.sh"), "eventlet", "--skip-full"],
                         capture_output=True, text=True, check=False)
    found = re.search(r"^results: (\S+)", out.stdout, re.MULTILINE)
    if not found or not os.path.isfile(os.path.join(found.group(1), "phases.jsonl")):
        sys.stderr.write(out.stdout[-2000:] + out.stderr[-2000:])
        raise SystemExit("the anchor run wrote no phases.jsonl")
    return os.path.join(found.group(1), "phases.jsonl")


def nova_median(anchor: str, phases: str) -> float:
    """Nova's median in seconds, as the anchor's own script computes it."""
    out = subprocess.run([sys.executable, os.path.join(anchor, "resize_median.py"), phases],
                         capture_output=True, text=True, check=True).stdout.strip()
    if not out.isdigit():
        raise SystemExit(f"resize_median.py found no cross-cell move in {phases}: {out!r}")
    return int(out) / 1000


def ours(rounds: int, keep: bool) -> tuple[list[float], list[float], list[dict], int]:
    """``2 * rounds`` resizes, each confirmed before the next: request -> MOVED as the
    conductor recorded it, request -> VERIFY_RESIZE as polling saw it, the reports."""
    with running_cloud(cells=2, hosts_per_cell=1, keep=keep) as cloud:
        flavors = {name: cloud.flavor_id(name) for name in (GEN1, GEN2)}
        sid = cloud.boot("mover", flavors[GEN1])["id"]
        there = GEN2
        resizes: list[float] = []
        migrations: list[str] = []
        sent_at: list[float] = []
        for _ in range(2 * rounds):
            sent_at.append(time.time())
            started = time.monotonic()
            cloud.action(sid, {"resize": {"flavorRef": flavors[there]}}, 202)
            cloud.wait_status(sid, "VERIFY_RESIZE")
            resizes.append(time.monotonic() - started)
            migrations.append(cloud.migration_uuid(sid))
            cloud.action(sid, {"confirmResize": None}, 204)
            cloud.wait_status(sid, "ACTIVE")
            cloud.wait_move_ended(migrations[-1])
            there = GEN1 if there == GEN2 else GEN2
        reports = [cloud.migration_show(m) for m in migrations]
        cloud.delete(sid)
        spans = [r["moved_at"] - sent for r, sent in zip(reports, sent_at, strict=True)]
        return spans, resizes, reports, cloud.vanished


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10,
                        help="round trips; each makes 2 resizes (each then confirmed)")
    parser.add_argument("--anchor", help="the Nova anchor's directory (run.sh, "
                                         "resize_median.py)")
    parser.add_argument("--phases", help="a phases.jsonl of an earlier anchor run, instead "
                                         "of running it now (then not the same run)")
    parser.add_argument("--keep", action="store_true", help="keep the state directory")
    args = parser.parse_args()
    anchor = anchor_dir(args.anchor)
    print(f"cross-cell resize control plane against Nova's, on {machine()}")
    phases = args.phases or run_anchor(anchor)
    nova = nova_median(anchor, phases)
    nova_load = load_note()
    print(f"Nova: median {nova:.3f}s (resize API call -> migrate_server done, {phases}); "
          f"{nova_load}", flush=True)

    spans, resizes, reports, vanished = ours(args.rounds, args.keep)
    ratio = statistics.median(spans) / nova
    polled = statistics.median(resizes) / nova
    print(f"\ntranscell: request sent -> move MOVED     {summary(spans)}")
    print(f"transcell: request -> VERIFY_RESIZE polled {summary(resizes)}")
    print(f"Nova:      API call -> migrate_server done  median {nova:6.3f}s")
    print(f"ratio transcell / Nova = {ratio:.2f}x on the same span, {polled:.2f}x polled  "
          f"(goal {GOAL}x: {'met' if ratio <= GOAL else 'not met'}; stretch {STRETCH}x: "
          f"{'met' if ratio <= STRETCH else 'not met'})")

    print("\nwhere a resize's time goes (median of the saga's steps, migration show):")
    steps = [step["name"] for step in reports[0]["steps"]]
    for step in steps:
        values = [r["phases_seconds"].get(step, 0.0) for r in reports]
        print(f"  {step:<12} median {statistics.median(values) * 1000:6.1f} ms  "
              f"p90 {percentile(values, 90) * 1000:6.1f} ms")
    total = statistics.median(sum(r["phases_seconds"].values()) for r in reports)
    print(f"  {'all steps':<12} median {total * 1000:6.1f} ms (the rest of request -> "
          "VERIFY_RESIZE is the API, the cast, the conductor's claim and the polling)")
    uploaded = [r["bytes_uploaded"] or 0 for r in reports]
    print(f"  bytes uploaded per move median {statistics.median(uploaded):.0f}")
    if vanished:
        print(f"  the server answered 404 to {vanished} polls while it was being moved")
    print(f"Nova's run: {nova_load}")
    print(f"ours:       {load_note()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
