"""The conductor's drain runner: starts moves in waves and sees each to its end.

It keeps nothing a restart could lose. Each pass reads the drain's row,
looks at every started move's saga (the move's own durable record), decides,
and writes the row back conditionally; a pass that lost a race reloads and
decides again. A move is asked for through the compute API's ``migrate``
(the same checks and the same saga as an operator's cold migration), with
every host of the drained cell (or, with ``--to``, every host outside the
target cell) ignored by the scheduler. Once a move's saga says it is moved
(its disk verified at the target), the drain confirms it: a drain leaves no
server in VERIFY_RESIZE.
"""

from __future__ import annotations

import collections
import datetime as dt
import json
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from transcell import cell as cells
from transcell import exception
from transcell.conductor.moves import _process_gone
from transcell.context import RequestContext
from transcell.db import api_models as am
from transcell.db.session import api_session
from transcell.db.types import utcnow
from transcell.drain import model
from transcell.drain.model import Drain, DrainChanged
from transcell.move import precopy, report
from transcell.move import saga as sagas
from transcell.move.saga import Saga
from transcell.move.task import MoveTask

LOG = logging.getLogger(__name__)

MIB = 1024 * 1024
INTERVAL = 0.5
NO_HOST = exception.NoValidHost.msg_fmt.split("%")[0].strip()


def _compute_api():
    from transcell.compute.api import API
    return API()


def ignored_hosts(drain: Drain) -> list[str]:
    """Every host a move of this drain may not land on: the drained cell's, and
    with a target cell, every other cell's."""
    source = cells.get_cell(drain.cell_uuid)
    ignore = set(cells.hosts_in_cell(source))
    if drain.to_cell_uuid:
        for cell in cells.list_cells(include_cell0=False):
            if cell.uuid != drain.to_cell_uuid:
                ignore.update(cells.hosts_in_cell(cell))
    return sorted(ignore)


class DrainRunner:
    def __init__(self, owner: str | None = None) -> None:
        self.owner = owner or sagas.new_owner_id()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._driving: set[str] = set()

    def start_periodic(self) -> None:
        threading.Thread(target=self._loop, name="conductor-drains", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.pass_once()
            except Exception:
                LOG.exception("pass over unfinished drains failed")
            self._stop.wait(1.0)

    def pass_once(self) -> None:
        """Take every unfinished drain nobody else holds and drive it in a thread."""
        for drain_uuid, owner in Drain.holders(*model.UNFINISHED):
            with self._lock:
                if drain_uuid in self._driving:
                    continue
            take_from = owner if owner and _process_gone(owner) else None
            claimed = Drain.claim(drain_uuid, self.owner, take_from=take_from)
            if claimed is None:
                continue
            if owner and owner != self.owner:
                LOG.warning("Took over drain %s from %s", drain_uuid, owner)
            with self._lock:
                self._driving.add(drain_uuid)
            threading.Thread(target=self._drive, args=(drain_uuid,), daemon=True,
                             name=f"drain-{drain_uuid[:8]}").start()

    def _drive(self, drain_uuid: str) -> None:
        drain: Drain | None = None
        try:
            while not self._stop.is_set():
                # the drain as this runner last wrote it, unless someone wrote since
                drain = Drain.load(drain_uuid) if drain is None else Drain.current(drain)
                if drain.status == model.DONE or drain.owner != self.owner:
                    return
                try:
                    drain = self.step(drain)
                except DrainChanged:
                    drain = None
                    continue  # a pause, a resume or another writer: decide again
                except Exception:
                    drain = None
                    LOG.exception("Drain %s: a pass failed; it is retried", drain_uuid)
                self._stop.wait(INTERVAL)
        finally:
            with self._lock:
                self._driving.discard(drain_uuid)

    # one pass -----------------------------------------------------------------
    def step(self, drain: Drain) -> Drain:
        """Advance every started move, start what the limits allow, finish when all ended."""
        ctx = RequestContext.from_dict(drain.context)
        # only a started move's entry changes here: compare those, not every server's
        started = {sid: e for sid, e in drain.servers.items() if e["state"] in model.IN_FLIGHT}
        before = json.dumps(started, sort_keys=True)
        for server_id, entry in started.items():
            if entry["state"] == model.STARTING:
                self._resolve_starting(server_id, entry, drain)
        following = {sid: e for sid, e in started.items()
                     if e["state"] in (model.MOVING, model.CONFIRMING)}
        found = _sagas([e["migration"] for e in following.values()])
        names: dict[str | None, str | None] = {}
        for server_id, entry in following.items():
            self._follow(ctx, server_id, entry, drain, found.get(entry["migration"]), names)
        if all(e["state"] in model.FINISHED for e in drain.servers.values()):
            return drain.save(owner=self.owner, status=model.DONE)
        renew_by = utcnow() + dt.timedelta(seconds=model.LEASE_SECONDS / 2)
        if json.dumps(started, sort_keys=True) != before or \
                drain.lease_expires_at is None or drain.lease_expires_at <= renew_by:
            drain = drain.save(owner=self.owner)
        if drain.status == model.RUNNING:
            drain = self._start_wave(ctx, drain)
        return drain

    @staticmethod
    def _resolve_starting(server_id: str, entry: dict, drain: Drain) -> None:
        """A move asked for just before a crash: adopt its saga if it was recorded."""
        saga = Saga.latest_for(server_id)
        asked = entry.get("asked_at") or 0
        if saga is not None and (saga.resources.get("started_at") or 0) >= asked - 1:
            entry.update(state=model.MOVING, migration=saga.uuid)
        else:
            entry.update(state=model.PENDING, attempts=max(0, entry["attempts"] - 1))

    def _follow(self, ctx: RequestContext, server_id: str, entry: dict, drain: Drain,
                saga: Saga | None = None, names: dict | None = None) -> None:
        """``saga`` as read for this pass (one query for every move followed), and
        ``names`` the pass's cell names, so a pass costs no query per server."""
        saga = saga or Saga.load(entry["migration"])
        res = saga.resources
        names = {} if names is None else names
        cell = res.get("target_cell")
        if cell not in names:
            names[cell] = _cell_name(cell)
        entry.update(dest_host=res.get("dest_host"), target_cell=names[cell],
                     disk_size=res.get("disk_size", entry.get("disk_size")),
                     bytes=precopy.bytes_sent(res))
        if saga.status == sagas.MOVED:
            try:
                _compute_api().confirm_resize(ctx, server_id)
            except exception.TranscellError as exc:
                LOG.info("Drain %s: confirm of %s not taken now: %s", drain.uuid, server_id,
                         exc)
            entry["state"] = model.CONFIRMING
        elif saga.status == sagas.CONFIRMED:
            entry.update(state=model.MOVED, downtime_seconds=report.downtime_seconds(res),
                         finished_at=time.time())
        elif saga.status in (sagas.ROLLED_BACK, sagas.FAILED, sagas.REVERTED):
            reason = saga.error or f"the move ended {saga.status}"
            if reason == MoveTask.interrupted:
                # its conductor died (a restart): neither the server's nor the host's fault
                entry.update(state=model.PENDING, migration=None, dest_host=None,
                             attempts=max(0, entry["attempts"] - 1))
                entry["errors"].append(reason)
                return
            self._failed_attempt(entry, drain, reason, retry=saga.status == sagas.ROLLED_BACK)

    @staticmethod
    def _failed_attempt(entry: dict, drain: Drain, reason: str, retry: bool) -> None:
        """Another attempt (avoiding the host that failed) while attempts remain, else failed."""
        entry["errors"].append(reason)
        if entry.get("dest_host") and entry["dest_host"] not in entry["avoid_hosts"]:
            entry["avoid_hosts"].append(entry["dest_host"])
        elif reason.startswith(NO_HOST) and entry["avoid_hosts"]:
            # the hosts it failed on were the only ones left: the next try may use them
            entry["avoid_hosts"] = []
        if retry and entry["attempts"] < drain.settings["max_attempts"]:
            entry.update(state=model.PENDING, migration=None, dest_host=None)
        else:
            entry.update(state=model.FAILED, error=reason, finished_at=time.time())

    def _start_wave(self, ctx: RequestContext, drain: Drain) -> Drain:
        """Start every move the limits allow now, with two writes of the row in all.

        The wave's servers are written ``starting`` in one conditional write
        before the first is asked for, and the outcomes in one write after the
        last: a crash or a lost race in between leaves them ``starting``, which
        the next pass resolves from each server's saga (``_resolve_starting``).
        Writing the whole row twice per server made a wave of 64 moves on a
        drain of 1,000 servers rewrite about 50 MB of JSON.
        """
        settings = drain.settings
        flight = Flight.of(drain.servers.values())
        wave: list[tuple[str, list[str]]] = []
        base_ignore: list[str] | None = None
        now = time.time()
        for server_id, entry in drain.servers.items():
            if entry["state"] != model.PENDING:
                continue
            verdict, full = flight.verdict(settings, entry)
            if verdict == WAIT:
                break
            if verdict == SKIP:
                continue
            if base_ignore is None:
                base_ignore = ignored_hosts(drain)
            wave.append((server_id, sorted({*base_ignore, *full, *entry["avoid_hosts"]})))
            entry.update(state=model.STARTING, attempts=entry["attempts"] + 1,
                         asked_at=now, started_at=entry["started_at"] or now)
            flight.add(entry)
        if not wave:
            return drain
        drain = drain.save(owner=self.owner)
        saved = time.monotonic()
        for server_id, ignore in wave:
            if time.monotonic() - saved > model.LEASE_SECONDS / 3:
                # a long wave (slow requests on a busy host) keeps its lease
                drain, saved = drain.save(owner=self.owner), time.monotonic()
            entry = drain.servers[server_id]
            try:
                migration = _compute_api().migrate(ctx, server_id, None, True,
                                                   ignore_hosts=ignore, drain=drain.uuid)
            except exception.TranscellError as exc:
                # a server gone or in a state no move takes is not tried again
                self._failed_attempt(entry, drain, exc.message, retry=not isinstance(
                    exc, exception.NotFound | exception.InstanceInvalidState))
            else:
                entry.update(state=model.MOVING, migration=migration)
        return drain.save(owner=self.owner)


WAIT, SKIP, START = "wait", "skip", "start"


def _size(entry: dict) -> int:
    """The disk a move carries: the saga's figure once it has one, before that the
    flavor's (so the moves of one wave count against the bandwidth cap at once)."""
    if entry.get("disk_size") is not None:
        return entry["disk_size"]
    return entry.get("expected_size") or 0


@dataclass
class Flight:
    """The moves in flight, counted once per wave and kept up to date as it starts
    moves, so deciding for each pending server costs no pass over every server."""

    moves: int = 0
    data: int = 0
    sources: collections.Counter = field(default_factory=collections.Counter)
    targets: collections.Counter = field(default_factory=collections.Counter)

    @classmethod
    def of(cls, entries) -> Flight:
        flight = cls()
        for entry in entries:
            if entry["state"] in model.IN_FLIGHT:
                flight.add(entry)
        return flight

    def add(self, entry: dict) -> None:
        self.moves += 1
        self.data += _size(entry)
        self.sources[entry["source_host"]] += 1
        if entry.get("dest_host"):
            self.targets[entry["dest_host"]] += 1

    def verdict(self, settings: dict[str, Any], entry: dict) -> tuple[str, list[str]]:
        if self.moves >= settings["concurrency"]:
            return WAIT, []
        cap = settings.get("bandwidth_mib_s")
        if cap and self.moves and (self.data >= cap * MIB
                                   or self.data + _size(entry) > cap * MIB):
            return WAIT, []
        if self.sources[entry["source_host"]] >= settings["per_source_host"]:
            return SKIP, []
        return START, sorted(h for h, n in self.targets.items()
                             if n >= settings["per_target_host"])


def admit(servers: dict[str, dict], settings: dict[str, Any], entry: dict
          ) -> tuple[str, list[str]]:
    """Whether the pending ``entry`` may start now, and the target hosts it must avoid.

    ``WAIT``: no move may start (``concurrency`` moves run, or the disks of the
    running moves fill the ``bandwidth_mib_s`` cap or this one's would take them
    over it; one move always may run). ``SKIP``: not this one (its source host runs
    ``per_source_host`` moves), another may. ``START``: it may, avoiding the
    hosts that already receive ``per_target_host`` moves (a move counts there
    once its host is chosen).
    """
    return Flight.of(servers.values()).verdict(settings, entry)


def _sagas(uuids: list[str]) -> dict[str, Saga]:
    """The sagas of the moves a pass follows, read in one query per 500."""
    found: dict[str, Saga] = {}
    for start in range(0, len(uuids), 500):
        with api_session() as s:
            for row in s.scalars(select(am.MoveSaga).where(
                    am.MoveSaga.uuid.in_(uuids[start:start + 500]))):
                found[row.uuid] = Saga(row)
    return found


def _cell_name(cell_uuid: str | None) -> str | None:
    if not cell_uuid:
        return None
    try:
        return cells.get_cell(cell_uuid).name
    except exception.NotFound:
        return cell_uuid


def summary(drain: Drain) -> dict[str, Any]:
    """Totals, progress and an ETA (from the bytes moved so far against the time taken)."""
    entries = list(drain.servers.values())
    counts = collections.Counter(e["state"] for e in entries)
    moved_bytes = sum(e.get("bytes") or 0 for e in entries if e["state"] == model.MOVED)
    flying_bytes = sum(e.get("bytes") or 0 for e in entries if e["state"] in model.IN_FLIGHT)
    finished = counts[model.MOVED] + counts[model.FAILED]
    elapsed = None
    if drain.started_at is not None:
        end = drain.finished_at or utcnow()
        elapsed = max(0.0, (end - drain.started_at).total_seconds())
    eta = None
    if drain.status != model.DONE and finished and elapsed:
        eta = round(elapsed / finished * (len(entries) - finished), 1)
    elif drain.status == model.DONE:
        eta = 0.0
    rate = round((moved_bytes + flying_bytes) / MIB / elapsed, 3) if elapsed else None
    return {"total": len(entries), "moved": counts[model.MOVED],
            "failed": counts[model.FAILED],
            "in_progress": sum(counts[s] for s in model.IN_FLIGHT),
            "pending": counts[model.PENDING], "bytes_moved": moved_bytes + flying_bytes,
            "elapsed_seconds": elapsed, "eta_seconds": eta, "throughput_mib_s": rate}
