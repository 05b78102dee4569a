"""``transcell demo``: servers move from old hardware to new, and their bytes come along.

The story the demo tells is transcell's headline feature. cell1 is the old
hardware generation (gen1 flavors), cell2 the new one (gen2). Servers built
on gen1 flavors get known data written into their root disks, one of them is
stopped, and each is resized to a gen2 flavor, which can only be satisfied
in the other cell: the move goes through the global image store, never host
to host. Most moves are confirmed, one is reverted, and then every disk is
read back at the host the server ended on, so the demo proves the bytes
arrived rather than trusting the status.

The cloud runs in this process, but the servers are driven only through the
public HTTP API, as a client would drive them. The demo looks behind the API
only where a client cannot: it writes and reads the disk files (as a guest
would), reads the per-step figures of ``transcell migration show`` and runs
the audit. Any failed check makes the exit status non-zero.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any

from transcell.audit import run_audit
from transcell.cloud import EmbeddedCloud

MiB = 1024 * 1024
GiB = 1024 * MiB

#: os-migrations shows each migration's uuid from this microversion on.
MIGRATIONS_VERSION = "2.59"

#: How long any one wait may take before the demo calls it a failure.
TIMEOUT = 90.0


@dataclass(frozen=True)
class Plan:
    """One server of the story: what it is built as, what it becomes, how the move ends."""

    name: str
    old_flavor: str
    new_flavor: str
    ending: str  # "confirm" or "revert"
    stopped: bool
    payload_mib: int  # size of the largest block written, so moved bytes differ per server


PLANS = (
    Plan("web-1", "gen1.small", "gen2.small", "confirm", False, 2),
    Plan("web-2", "gen1.small", "gen2.small", "confirm", False, 8),
    Plan("db-1", "gen1.medium", "gen2.medium", "revert", False, 16),
    Plan("batch-1", "gen1.small", "gen2.small", "confirm", True, 4),
)


@dataclass
class Tracked:
    """What the demo knows about one server as the story unfolds."""

    plan: Plan
    id: str = ""
    source_host: str = ""
    final_host: str = ""
    disk_gb: int = 0
    writes: list[tuple[int, bytes]] = field(default_factory=list)
    migration: str | None = None
    line: str = ""
    state: tuple = ()
    checks: int = 0
    problems: list[str] = field(default_factory=list)


class Failure(Exception):
    """A check of the demo failed; the message says which and why."""


# -- talking to the cloud ------------------------------------------------------------------

def connect(state_dir: str, cloud: str = "transcell-admin"):
    import openstack
    from openstack import config as occ

    config = occ.OpenStackConfig(config_files=[os.path.join(state_dir, "clouds.yaml")])
    region = config.get_one(cloud=cloud)
    return openstack.connection.Connection(config=region)


class Compute:
    """Raw compute API calls over the SDK's authenticated session.

    Raw JSON rather than SDK resources, because the demo reads fields (the
    extended host attribute, ``progress``, migration uuids) under exact
    microversions and must see every status code it gets.
    """

    def __init__(self, conn) -> None:
        self.conn = conn

    def call(self, method: str, path: str, body: Any = None, version: str | None = None,
             expect: tuple[int, ...] = (200,)) -> Any:
        kwargs: dict[str, Any] = {}
        if body is not None or method == "POST":
            kwargs["json"] = body
        if version:
            kwargs["microversion"] = version
        resp = self.conn.compute.request(path, method, **kwargs)
        if resp.status_code not in expect:
            raise Failure(f"{method} {path} answered {resp.status_code}: {resp.text[:300]}")
        return resp.json() if resp.content else None

    def server(self, server_id: str) -> dict:
        return self.call("GET", f"/servers/{server_id}", version="2.53")["server"]

    def action(self, server_id: str, body: dict, expect: int) -> None:
        self.call("POST", f"/servers/{server_id}/action", body, expect=(expect,))

    def max_version(self) -> str:
        doc = self.call("GET", "/")
        return doc["version"]["version"]


def _version_tuple(version: str) -> tuple[int, int]:
    major, minor = version.split(".")
    return int(major), int(minor)


class MigrationFinder:
    """The server's newest migration: from os-migrations at 2.59, else from its saga.

    Clients learn a migration's uuid from ``os-migrations`` at 2.59. A cloud
    that does not advertise 2.59 yet leaves the demo one other source, the
    saga record in the API database, which it can read because it runs
    inside the cloud's process.
    """

    def __init__(self, compute: Compute) -> None:
        self.compute = compute
        self.use_api = _version_tuple(compute.max_version()) >= _version_tuple(
            MIGRATIONS_VERSION)

    @property
    def source(self) -> str:
        return (f"os-migrations at {MIGRATIONS_VERSION}" if self.use_api
                else f"the saga records (the API does not offer {MIGRATIONS_VERSION} yet)")

    def newest(self, server_id: str) -> tuple[str, str] | None:
        """(uuid, status) of the newest migration of the server, or None."""
        if self.use_api:
            found = self.compute.call("GET", f"/os-migrations?instance_uuid={server_id}",
                                      version=MIGRATIONS_VERSION)["migrations"]
            if not found:
                return None
            return found[0]["uuid"], found[0]["status"]
        from transcell.move.report import show
        from transcell.move.saga import Saga
        saga = Saga.latest_for(server_id)
        if saga is None:
            return None
        records = show(saga.uuid)["migration_records"]
        visible = [r["status"] for r in records if not r["hidden"]]
        return saga.uuid, (visible[0] if visible else saga.status)


# -- waiting and showing progress ----------------------------------------------------------

class Board:
    """One compact line per server, redrawn in place on a terminal.

    Piped into a file or CI log, a line is printed only when the server's
    state changes (not merely its clock), so the log reads as a history of
    each move instead of a wall of repeats.
    """

    def __init__(self, tracked: list[Tracked]) -> None:
        self.tracked = tracked
        self.live = sys.stdout.isatty()
        self.drawn = 0

    def update(self) -> None:
        if self.live:
            if self.drawn:
                sys.stdout.write(f"\x1b[{self.drawn}F")
            for t in self.tracked:
                sys.stdout.write(f"\x1b[2K   {t.line}\n")
            self.drawn = len(self.tracked)
            sys.stdout.flush()

    def changed(self, t: Tracked, state: tuple, line: str) -> None:
        t.line = line
        if state != t.state:
            t.state = state
            if not self.live:
                print(f"   {line}", flush=True)

    def finish(self) -> None:
        self.drawn = 0


def _bar(progress: int, width: int = 10) -> str:
    filled = max(0, min(width, progress * width // 100))
    return "[" + "#" * filled + "." * (width - filled) + "]"


def follow(compute: Compute, finder: MigrationFinder, tracked: list[Tracked],
           done: dict[str, tuple[str, ...]], started: dict[str, float], phase: str) -> None:
    """Poll every server until it reaches one of its ``done`` statuses with no task.

    Each line shows what a client sees (status, task, ``progress``) beside
    the migration record's status, so the two can be watched together.
    """
    board = Board(tracked)
    pending = {t.id for t in tracked}
    deadline = time.monotonic() + TIMEOUT
    while pending:
        if time.monotonic() > deadline:
            raise Failure(f"{phase}: still waiting for "
                          + ", ".join(t.plan.name for t in tracked if t.id in pending))
        for t in tracked:
            if t.id not in pending:
                continue
            found = compute.server(t.id)
            status, task = found["status"], found["OS-EXT-STS:task_state"]
            if status == "ERROR":
                raise Failure(f"{t.plan.name} went to ERROR during {phase}: "
                              f"{(found.get('fault') or {}).get('message')}")
            migration = finder.newest(t.id)
            mig_status = migration[1] if migration else "-"
            if migration:
                t.migration = migration[0]
            progress = int(found.get("progress") or 0)
            elapsed = time.monotonic() - started[t.id]
            finished = status in done[t.id] and task is None
            if finished:
                pending.discard(t.id)
            line = (f"{t.plan.name:<8} {status:<13} {(task or '-'):<18} {_bar(progress)} "
                    f"{progress:>3}%  migration {mig_status:<14} {elapsed:5.1f}s  "
                    f"on {found['OS-EXT-SRV-ATTR:host']}")
            board.changed(t, (status, task, progress, mig_status), line)
        board.update()
        if pending:
            time.sleep(0.25)
    board.finish()


# -- the guest's data ------------------------------------------------------------------------

def _payload(name: str, offset: int, length: int) -> bytes:
    """Deterministic bytes per server and offset: a misplaced chunk reads back wrong."""
    return hashlib.shake_256(f"{name}@{offset}".encode()).digest(length)


def write_plan(t: Tracked) -> list[tuple[int, int]]:
    """Offsets and lengths to write: inside the base image's data (a copy-on-write of
    base clusters), past it in the grown part of the disk, and at the disk's very end."""
    size = t.disk_gb * GiB
    return [(4096 + 100, 3000), (7 * MiB + 3, 64 * 1024), (GiB + 12345, t.plan.payload_mib * MiB),
            (3 * GiB + 7, 128 * 1024), (size - 65536, 65536)]


#: A region of the base image no write touches: it must survive the flattening.
BASE_REGION = (9 * MiB, 64 * 1024)


def root_disk(server_id: str, host: str) -> tuple[str, str]:
    """Path and format of the server's root disk on ``host``, as the host's files say."""
    from transcell.inspect import locate
    for found in locate(server_id)["disks"]:
        if found["host"] == host and os.path.basename(found["path"]) == "disk":
            path = found["path"]
            with open(os.path.join(os.path.dirname(path), "disk.json")) as fh:
                return path, json.load(fh).get("format", "qcow2")
    raise Failure(f"no root disk of {server_id} on {host}")


def write_data(t: Tracked) -> None:
    from transcell.compute.virt import disk
    path, fmt = root_disk(t.id, t.source_host)
    for offset, length in write_plan(t):
        data = _payload(t.plan.name, offset, length)
        disk.guest_write(path, offset, data, fmt)
        t.writes.append((offset, data))


def verify_data(t: Tracked) -> None:
    """Read every written range back at the final host, and nowhere else a disk may be."""
    from transcell.compute.virt import disk
    from transcell.image import default
    from transcell.inspect import locate
    hosts = {d["host"] for d in locate(t.id)["disks"]}
    if hosts != {t.final_host}:
        t.problems.append(f"disks on {sorted(hosts)}, expected only {t.final_host}")
    path, fmt = root_disk(t.id, t.final_host)
    size = disk.virtual_size(path, fmt)
    if size != t.disk_gb * GiB:
        t.problems.append(f"disk is {size} bytes, flavor says {t.disk_gb} GiB")
    for offset, data in t.writes:
        if disk.guest_read(path, offset, len(data), fmt) != data:
            t.problems.append(f"bytes at offset {offset} differ from what was written")
        else:
            t.checks += 1
    offset, length = BASE_REGION
    if disk.guest_read(path, offset, length, fmt) != default.content()[offset:offset + length]:
        t.problems.append(f"base image bytes at offset {offset} were lost")
    else:
        t.checks += 1


# -- the story -------------------------------------------------------------------------------

def _table(rows: list[list[str]]) -> str:
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
             for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _mib(n: int | None) -> str:
    return "-" if n is None else f"{n / MiB:.1f} MiB"


def _gib(n: int | None) -> str:
    return "-" if n is None else f"{n / GiB:.0f} GiB"


def audit_until_clean(attempts: int = 30) -> list[dict]:
    """Usage refreshes and notifications are asynchronous: give them a moment to settle."""
    problems: list[dict] = []
    for _ in range(attempts):
        problems = run_audit()
        if not problems:
            return []
        time.sleep(0.5)
    return problems


def boot(compute: Compute, conn, tracked: list[Tracked]) -> None:
    image = conn.image.find_image("transcell-base")
    network = conn.network.find_network("private")
    flavors = {f.name: f for f in conn.compute.flavors()}
    for t in tracked:
        body = {"server": {"name": t.plan.name, "flavorRef": flavors[t.plan.old_flavor].id,
                           "imageRef": image.id, "networks": [{"uuid": network.id}]}}
        t.id = compute.call("POST", "/servers", body, expect=(202,))["server"]["id"]
        t.disk_gb = flavors[t.plan.old_flavor].disk
    for t in tracked:
        found = wait_status(compute, t.id, ("ACTIVE",))
        t.source_host = found["OS-EXT-SRV-ATTR:host"]


def wait_status(compute: Compute, server_id: str, statuses: tuple[str, ...]) -> dict:
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        found = compute.server(server_id)
        if found["status"] in statuses and found["OS-EXT-STS:task_state"] is None:
            return found
        if found["status"] == "ERROR":
            raise Failure(f"server {found['name']} went to ERROR: {found.get('fault')}")
        time.sleep(0.2)
    raise Failure(f"server {server_id} did not reach {'/'.join(statuses)} in {TIMEOUT:.0f}s")


def story(state_dir: str, compute: Compute, conn) -> int:
    tracked = [Tracked(plan) for plan in PLANS]
    names = ", ".join(f"{p.name} ({p.old_flavor})" for p in PLANS)
    print(f"== building {len(PLANS)} servers on the old hardware: {names}")
    boot(compute, conn, tracked)
    for t in tracked:
        write_data(t)
    written = sum(len(d) for t in tracked for _, d in t.writes)
    print(f"   all ACTIVE in cell1; wrote {_mib(written)} of known data into their root disks "
          "at 5 offsets each (through the hosts' disk files)")
    for t in tracked:
        if t.plan.stopped:
            compute.action(t.id, {"os-stop": None}, 202)
            wait_status(compute, t.id, ("SHUTOFF",))
            print(f"   stopped {t.plan.name}: a stopped server moves too, and stays stopped")

    finder = MigrationFinder(compute)
    print(f"== resizing every server to a gen2 flavor; only cell2 has gen2 hardware "
          f"(migration status from {finder.source})")
    started: dict[str, float] = {}
    for t in tracked:
        flavor = conn.compute.find_flavor(t.plan.new_flavor)
        started[t.id] = time.monotonic()
        compute.action(t.id, {"resize": {"flavorRef": flavor.id}}, 202)
    follow(compute, finder, tracked, {t.id: ("VERIFY_RESIZE",) for t in tracked}, started,
           "resize")

    print("== confirming the moves we keep, reverting " + ", ".join(
        t.plan.name for t in tracked if t.plan.ending == "revert"))
    done: dict[str, tuple[str, ...]] = {}
    for t in tracked:
        started[t.id] = time.monotonic()
        if t.plan.ending == "confirm":
            compute.action(t.id, {"confirmResize": None}, 204)
        else:
            compute.action(t.id, {"revertResize": None}, 202)
        done[t.id] = ("SHUTOFF",) if t.plan.stopped else ("ACTIVE",)
    follow(compute, finder, tracked, done, started, "confirm/revert")

    print("== reading every disk back at the host its server ended on")
    from transcell.move.report import show
    rows = [["server", "flavor", "from", "to", "moved / disk", "move", "downtime", "result"]]
    for t in tracked:
        found = compute.server(t.id)
        t.final_host = found["OS-EXT-SRV-ATTR:host"]
        want = "confirmed" if t.plan.ending == "confirm" else "reverted"
        migration = finder.newest(t.id)
        if migration is None or migration[1] != want:
            t.problems.append(f"migration is {migration}, expected {want}")
        if t.plan.ending == "confirm":
            t.disk_gb = conn.compute.find_flavor(t.plan.new_flavor).disk
        if t.plan.ending == "revert":
            if t.final_host != t.source_host:
                t.problems.append(f"reverted to {t.final_host}, not back to {t.source_host}")
        elif not t.final_host.startswith("cell2-"):
            t.problems.append(f"ended on {t.final_host}, not in cell2")
        verify_data(t)
        report = show(t.migration) if t.migration else {}
        if report.get("status") != want:
            t.problems.append(f"saga is {report.get('status')}, expected {want}")
        steps = report.get("phases_seconds") or {}
        target = report.get("target") or {}
        ending = (f"{want}, {t.checks} ranges verified on {t.final_host}" if not t.problems
                  else f"{want}, FAILED: {'; '.join(t.problems)}")
        rows.append([
            t.plan.name, f"{t.plan.old_flavor} -> {t.plan.new_flavor}",
            f"{t.source_host}", f"{target.get('host')} ({target.get('cell')})"
            + (" -> back" if t.plan.ending == "revert" else ""),
            f"{_mib(report.get('bytes_uploaded'))} / {_gib(report.get('disk_size'))}",
            f"{sum(steps.values()):.1f}s", f"{report.get('downtime_seconds') or 0:.1f}s"
            + (" (off)" if t.plan.stopped else ""), ending])
    print(_table(rows))
    print("   moved: bytes the source host uploaded to the image store (chunks it already "
          "held, such as the base image's, are not sent again)\n"
          "   move: the saga's steps up to VERIFY_RESIZE; downtime: from the guest's stop at "
          "the source to its start at the target")
    example = next((t.migration for t in tracked if t.migration), None)
    if example:
        print(f"   per-step seconds: transcell --state-dir {state_dir} migration show {example}")

    failed = [t for t in tracked if t.problems]
    from transcell import demo_attached
    try:
        attached = demo_attached.act(conn)
    except demo_attached.Failure as exc:
        attached = [str(exc)]
    for problem in attached:
        print(f"   FAILED: {problem}")
    problems = audit_until_clean()
    if problems:
        print("== audit found problems:")
        for problem in problems:
            print(f"   {problem['kind']}: {problem['detail']}")
    else:
        print("== audit: mappings, rows, allocations, ports and bindings, volumes and attachments, "
              "images and disks are consistent "
              "across both cells")
    if failed or problems or attached:
        return 1

    print("== deleting every server")
    for t in tracked:
        compute.call("DELETE", f"/servers/{t.id}", expect=(204,))
    for t in tracked:
        _wait_gone(compute, t.id)
    problems = audit_until_clean()
    if problems:
        print("== audit after deleting found problems:")
        for problem in problems:
            print(f"   {problem['kind']}: {problem['detail']}")
        return 1
    print("== audit: clean, nothing left behind in either cell")
    return 0


def _wait_gone(compute: Compute, server_id: str) -> None:
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        if compute.conn.compute.get(f"/servers/{server_id}").status_code == 404:
            return
        time.sleep(0.2)
    raise Failure(f"server {server_id} was not deleted in {TIMEOUT:.0f}s")


def run(state_dir: str | None, port: int = 0) -> int:
    if state_dir is None or not os.path.isabs(state_dir) or os.path.basename(state_dir) == "state":
        state_dir = tempfile.mkdtemp(prefix="transcell-demo-")
    cloud = EmbeddedCloud(state_dir, port=port)
    started = time.monotonic()
    cloud.setup()
    cloud.serve()
    print(f"== a two-cell cloud is up at {cloud.base_url} "
          f"({time.monotonic() - started:.1f}s, state in {state_dir})")
    try:
        conn = connect(state_dir)
        for zone in conn.compute.availability_zones(details=True):
            if zone.name == "internal":
                continue
            hosts = ", ".join(sorted((zone.hosts or {}).keys()))
            generation = {"cell1": "old hardware, gen1", "cell2": "new hardware, gen2"}.get(
                zone.name, "")
            print(f"   cell {zone.name}: hosts {hosts}" + (f" ({generation})" if generation
                                                          else ""))
        try:
            status = story(state_dir, Compute(conn), conn)
        except Failure as exc:
            print(f"== FAILED: {exc}")
            status = 1
        print(f"== {'done' if status == 0 else 'FAILED'} in {time.monotonic() - started:.1f}s")
        return status
    finally:
        cloud.stop()
