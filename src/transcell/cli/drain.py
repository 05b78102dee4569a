"""``transcell drain CELL``: move every server off a cell, with live progress.

A client of the admin API (``/os-transcell-drains``, with the
``transcell-admin`` credentials of ``STATE/clouds.yaml``), so a drain the
command started goes on in the conductor if the command is interrupted, and
``--watch ID`` picks it up again. While it watches, SIGUSR1 pauses the drain
and SIGUSR2 resumes it (as ``--pause ID`` and ``--resume ID`` do from another
shell). ``--dry-run`` asks the move plan API for every server of the cell and
changes nothing.
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import statistics
import sys
import time
from typing import Any

from transcell.cli.moves import _session, render

MIB = 1024 * 1024
COMPUTE = {"service_type": "compute"}
BAR = 30
#: Up to this many moved servers the report names each; past it, it counts them by target.
LISTED = 50
ACTIVE = ("starting", "moving", "confirming")


def add_parser(sub: Any, common: Any) -> None:
    drain = sub.add_parser("drain", help="Move every server off a cell, in waves")
    common(drain)
    drain.add_argument("cell", nargs="?", help="The cell to empty")
    drain.add_argument("--to", help="Move the servers to this cell only")
    drain.add_argument("--concurrency", type=int, help="Moves running at once, overall")
    drain.add_argument("--per-source-host", type=int,
                       help="Moves running at once from one host")
    drain.add_argument("--per-target-host", type=int, help="Moves running at once to one host")
    drain.add_argument("--bandwidth", type=float, metavar="MiB/s",
                       help="Cap on the data in flight: moves start while the disks of the "
                            "running moves are under this many MiB (the data path has no "
                            "throttle of its own)")
    drain.add_argument("--max-attempts", type=int, help="Attempts per server (default 2)")
    drain.add_argument("--dry-run", action="store_true",
                       help="Print each server's move plan; change nothing")
    what = drain.add_mutually_exclusive_group()
    what.add_argument("--watch", metavar="DRAIN_ID", help="Follow a drain already started")
    what.add_argument("--pause", metavar="DRAIN_ID", help="Pause a drain")
    what.add_argument("--resume", metavar="DRAIN_ID", help="Resume a paused drain")
    drain.add_argument("--no-wait", action="store_true",
                       help="Print the drain's id and return once it is accepted")
    drain.add_argument("--cloud", default="transcell-admin",
                       help="Cloud of STATE/clouds.yaml to use (an admin)")
    drain.add_argument("--json", action="store_true", help="The final report as JSON")


def cmd_drain(args: argparse.Namespace) -> int:
    from transcell.conf import CONF
    session = _session(CONF.state_dir, args.cloud)
    if args.pause or args.resume:
        drain_id = args.pause or args.resume
        resp = _action(session, drain_id, "pause" if args.pause else "resume")
        if resp.status_code != 202:
            print(f"{resp.status_code}: {resp.text}", file=sys.stderr)
            return 1
        print(f"drain {drain_id}: {'paused' if args.pause else 'resumed'}")
        return 0
    if args.watch:
        return watch(session, args.watch, args.json)
    if not args.cell:
        print("give a cell (or --watch, --pause or --resume with a drain id)", file=sys.stderr)
        return 2
    if args.dry_run:
        return dry_run(session, args)
    body: dict[str, Any] = {"cell": args.cell}
    for option, key in (("to", "to"), ("concurrency", "concurrency"),
                        ("per_source_host", "per_source_host"),
                        ("per_target_host", "per_target_host"),
                        ("bandwidth", "bandwidth_mib_s"), ("max_attempts", "max_attempts")):
        if getattr(args, option) is not None:
            body[key] = getattr(args, option)
    resp = session.post("/os-transcell-drains", json={"drain": body},
                        endpoint_filter=COMPUTE, raise_exc=False)
    if resp.status_code != 202:
        print(f"{resp.status_code}: {resp.text}", file=sys.stderr)
        return 1
    drain_id = resp.json()["drain"]["id"]
    print(f"drain {drain_id} of {args.cell} accepted", flush=True)
    if args.no_wait:
        return 0
    return watch(session, drain_id, args.json)


def dry_run(session: Any, args: argparse.Namespace) -> int:
    resp = session.post("/os-transcell-move-plans", json={"move_plan": {"cell": args.cell}},
                        endpoint_filter=COMPUTE, raise_exc=False)
    if resp.status_code != 200:
        print(f"{resp.status_code}: {resp.text}", file=sys.stderr)
        return 1
    plans = resp.json()["move_plans"]
    if args.json:
        print(json.dumps(plans, indent=2))
    else:
        if args.to:
            print(f"(plans pick any other cell; the drain itself keeps to {args.to})")
        for plan in plans:
            print(render(plan))
        total = sum(p.get("bytes_to_move") or 0 for p in plans)
        print(f"{len(plans)} servers, {sum(1 for p in plans if p['movable'])} movable, "
              f"{total / MIB:.1f} MiB to move; nothing was changed (dry run)")
    return 0 if all(p["movable"] for p in plans) else 3


def _action(session: Any, drain_id: str, name: str):
    return session.post(f"/os-transcell-drains/{drain_id}/action", json={name: None},
                        endpoint_filter=COMPUTE, raise_exc=False)


def watch(session: Any, drain_id: str, as_json: bool) -> int:
    """Show progress until the drain is done; SIGUSR1/SIGUSR2 pause and resume it."""
    asked: list[str] = []
    old = {sig: signal.signal(sig, lambda s, f: asked.append(
        "pause" if s == signal.SIGUSR1 else "resume"))
        for sig in (signal.SIGUSR1, signal.SIGUSR2)}
    tty = sys.stdout.isatty() and not as_json
    shown: dict[str, str] = {}
    drawn = 0
    try:
        while True:
            while asked:
                name = asked.pop(0)
                resp = _action(session, drain_id, name)
                print(f"{name}: {resp.status_code}", file=sys.stderr, flush=True)
            resp = session.get(f"/os-transcell-drains/{drain_id}", endpoint_filter=COMPUTE,
                               raise_exc=False)
            if resp.status_code != 200:
                print(f"{resp.status_code}: {resp.text}", file=sys.stderr)
                return 1
            drain = resp.json()["drain"]
            if tty:
                lines = screen(drain, shutil.get_terminal_size().lines - 2)
                sys.stdout.write(("\x1b[F\x1b[2K" * drawn) + "\n".join(lines) + "\n")
                sys.stdout.flush()
                drawn = len(lines)
            elif not as_json:
                for server in drain["servers"]:
                    line = server_line(server)
                    if shown.get(server["id"]) != line:
                        shown[server["id"]] = line
                        print(line, flush=True)
                progress = bar(drain)
                if shown.get("") != progress.split(" ETA")[0]:
                    shown[""] = progress.split(" ETA")[0]
                    print(progress, flush=True)
            if drain["status"] == "done":
                break
            time.sleep(poll_interval(len(drain["servers"])))
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
    if as_json:
        print(json.dumps(drain, indent=2))
    else:
        print(report(drain))
    return 0 if drain["progress"]["failed"] == 0 else 3


def server_line(server: dict[str, Any]) -> str:
    where = f"{server['source_host']}"
    if server.get("dest_host"):
        where += f" -> {server.get('target_cell')}/{server['dest_host']}"
    size = f" {(server.get('bytes') or 0) / MIB:.1f} MiB" if server.get("bytes") else ""
    extra = f" (attempt {server['attempts']})" if server["attempts"] > 1 else ""
    return f"  {server['name'] or server['id']:<20} {server['state']:<10} {where}{size}{extra}"


def poll_interval(servers: int) -> float:
    """Seconds between two reads of the drain: each read is every server's entry,
    built and sent by the API process that also runs the moves, so a large drain
    is read less often (0.5 s up to 250 servers, 2 s from 1,000)."""
    return min(2.0, max(0.5, servers / 500))


def screen(drain: dict[str, Any], rows: int) -> list[str]:
    """What the terminal shows: the moves running and the servers that failed, as many
    as fit in ``rows`` lines, then the bar. A line for each of 1,000 servers, redrawn
    twice a second, scrolled the bar off the screen and cost more than the drain's
    own pass."""
    shown = [s for s in drain["servers"] if s["state"] in ACTIVE or s["state"] == "failed"]
    room = max(1, rows - 1)
    lines = [server_line(s) for s in shown[:room]]
    if len(shown) > room:
        lines[-1] = f"  ... and {len(shown) - room + 1} more running or failed"
    return lines + [bar(drain)]


def bar(drain: dict[str, Any]) -> str:
    p = drain["progress"]
    done = p["moved"] + p["failed"]
    filled = int(BAR * done / p["total"]) if p["total"] else BAR
    eta = "-" if p["eta_seconds"] is None else f"{p['eta_seconds']:.0f}s"
    return (f"[{'#' * filled}{'.' * (BAR - filled)}] {done}/{p['total']} {drain['status']}, "
            f"{p['bytes_moved'] / MIB:.1f} MiB ETA {eta}")


def report(drain: dict[str, Any]) -> str:
    p = drain["progress"]
    lines = [f"drain {drain['id']} of {drain['cell']}: {p['moved']} moved, {p['failed']} "
             f"failed, {p['bytes_moved'] / MIB:.1f} MiB in {p['elapsed_seconds'] or 0:.0f} s"]
    moved = [s for s in drain["servers"] if s["state"] == "moved"]
    if len(moved) > LISTED:
        lines.extend(_moved_by_target(moved))
        moved = []
    for server in moved:
        if server["state"] == "moved":
            lines.append(f"  moved  {server['name']} ({server['id']}) to "
                         f"{server['target_cell']}/{server['dest_host']}: "
                         f"{(server.get('bytes') or 0) / MIB:.1f} MiB, downtime "
                         f"{server['downtime_seconds']} s")
    for server in drain["servers"]:
        if server["state"] == "failed":
            lines.append(f"  FAILED {server['name']} ({server['id']}) after "
                         f"{server['attempts']} attempts: {server['error']}")
    return "\n".join(lines)



def _moved_by_target(moved: list[dict[str, Any]]) -> list[str]:
    """Many moved servers, counted per target host, with the downtime's spread
    (``--json`` or ``--watch ID --json`` still gives every server)."""
    by_target: dict[str, list[dict[str, Any]]] = {}
    for server in moved:
        by_target.setdefault(f"{server['target_cell']}/{server['dest_host']}", []).append(server)
    lines = [f"  moved  {len(moved)} servers (each listed by --json):"]
    for target, servers in sorted(by_target.items()):
        size = sum(s.get("bytes") or 0 for s in servers) / MIB
        lines.append(f"    to {target}: {len(servers)}, {size:.1f} MiB")
    downtimes = [s["downtime_seconds"] for s in moved if s.get("downtime_seconds") is not None]
    if downtimes:
        lines.append(f"    downtime median {statistics.median(downtimes):.2f} s, "
                     f"max {max(downtimes):.2f} s")
    return lines
