"""Server groups in scheduling: where a group's members run, and what that allows.

Every request the scheduler answers that names a server (``instance_uuid``:
a build, a resize or migration, within or across cells, an unshelve) is held
to that server's group, found by the spec's ``scheduler_hints.group`` or, for
a spec that lost it, by the server's membership. The members' hosts are read
from every cell at that moment (hidden rows included: a member half way
through a cross-cell move occupies both its hosts), never from a stored
list, so an anti-affinity group spanning cells stays valid wherever its
members have moved. The server being placed does not count against itself.

- ``affinity``: only hosts already running a member (any host for the first).
- ``anti-affinity``: only hosts running fewer than ``max_server_per_host``
  members (default 1).
- ``soft-affinity`` / ``soft-anti-affinity``: no host is refused; hosts with
  more (fewer) members weigh more.
"""

from __future__ import annotations

import threading
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import select

from transcell import cell as cells
from transcell import exception
from transcell.compute import server_groups as groups
from transcell.context import RequestContext
from transcell.db import cell_models as cm
from transcell.db.session import cell_session
from transcell.registry import services
from transcell.scheduler.host_state import HostState

#: How much a soft policy weighs against the free-space weighers (RAM 1.0, disk 0.5):
#: it decides among hosts that fit, before spreading by free space; the cross-cell
#: preference of a move still outweighs it.
SOFT_WEIGHT_MULTIPLIER = 2.0


@dataclass(frozen=True)
class GroupHosts:
    """A group and how many of its other members run on each host."""

    group_uuid: str
    policy: str
    max_server_per_host: int
    hosts: Counter

    def allows(self, host: str) -> bool:
        """Whether ``host`` may take the server under a hard policy."""
        if self.policy == groups.AFFINITY:
            return not self.hosts or host in self.hosts
        if self.policy == groups.ANTI_AFFINITY:
            return self.hosts.get(host, 0) < self.max_server_per_host
        return True

    def why_not(self, host: str | None = None) -> str:
        if self.policy == groups.AFFINITY:
            where = ", ".join(sorted(self.hosts))
            return (f"server group {self.group_uuid} (affinity) keeps its members together "
                    f"on {where}" + (f", not {host}" if host else ""))
        return (f"server group {self.group_uuid} (anti-affinity, at most "
                f"{self.max_server_per_host} per host) already runs members on "
                + (host or ", ".join(sorted(h for h, n in self.hosts.items()
                                            if n >= self.max_server_per_host))))


#: One lock per group: a request for a member is scheduled (its members' hosts read,
#: its host chosen and claimed) while no other request of the same group is, so two
#: builds into an anti-affinity group sent at once cannot both take the same host.
_LOCKS: defaultdict[str, threading.Lock] = defaultdict(threading.Lock)
_LOCKS_GUARD = threading.Lock()


@contextmanager
def serialized(spec: dict) -> Iterator[None]:
    """Hold the lock of the spec's group (if any) while the request is scheduled."""
    placed = _group_uuid(spec)
    if placed is None:
        yield
        return
    with _LOCKS_GUARD:
        lock = _LOCKS[placed]
    with lock:
        yield


def _hint(spec: dict) -> str | None:
    """The spec's ``group`` hint (Nova's clients may send it as a one-item list)."""
    hint = (spec.get("scheduler_hints") or {}).get("group")
    if isinstance(hint, list):
        hint = hint[0] if hint else None
    return str(hint) if hint else None


def _group_uuid(spec: dict) -> str | None:
    hint = _hint(spec)
    if hint:
        return str(hint)
    group = groups.group_of(spec["instance_uuid"]) if spec.get("instance_uuid") else None
    return group.uuid if group else None


def _claimed_hosts(others: list[str], states: dict[str, HostState] | None
                   ) -> dict[str, set[str]]:
    """Hosts the members hold in Placement: a member just scheduled holds its host
    there before its row exists in the cell."""
    if not states or services.placement is None:
        return {}
    held: dict[str, set[str]] = {}
    for uuid in others:
        try:
            allocations = services.placement.get_allocations(uuid).get("allocations") or {}
        except exception.PlacementError:
            continue
        for rp in allocations:
            if rp in states:
                held.setdefault(uuid, set()).add(states[rp].host)
    return held


def hosts_of(members: list[str], exclude: str | None,
             states: dict[str, HostState] | None = None) -> Counter:
    """How many of ``members`` (but ``exclude``) run, or hold a claim, on each host."""
    others = [m for m in members if m != exclude]
    found: Counter = Counter()
    if not others:
        return found

    def read(cell: cells.Cell) -> list[tuple[str, str]]:
        with cell_session(cell) as s:
            return [(r.uuid, r.host) for r in s.execute(
                select(cm.Instance.uuid, cm.Instance.host)
                .where(cm.Instance.uuid.in_(others), cm.Instance.deleted == 0))]

    held = _claimed_hosts(others, states)
    for rows in cells.scatter(cells.list_cells(include_cell0=False), read).values():
        for uuid, host in rows:
            if host:
                held.setdefault(uuid, set()).add(host)
    for hosts in held.values():
        found.update(hosts)
    return found


def hosts_for_group(ctx: RequestContext | None, instance_uuid: str,
                    group_uuid: str | None = None,
                    states: dict[str, HostState] | None = None) -> GroupHosts | None:
    """The group ``instance_uuid`` must honour and its other members' hosts; None
    when the server is in no group. ``group_uuid`` names the group of a server
    not yet recorded as a member."""
    try:
        group = groups.get(group_uuid) if group_uuid else groups.group_of(instance_uuid)
    except groups.GroupNotFound:
        group = None
    if group is None:
        return None
    return GroupHosts(group.uuid, group.policy, group.max_server_per_host,
                      hosts_of(group.members, instance_uuid, states))


def for_spec(spec: dict, states: dict[str, HostState] | None = None) -> GroupHosts | None:
    """The group the request must honour; ``states`` (the scheduler's host states)
    let members that hold a host only in Placement so far count too."""
    hint = _hint(spec)
    uuid = spec.get("instance_uuid")
    if not uuid and not hint:
        return None
    return hosts_for_group(None, uuid or "", hint, states)


def check_host(ctx: RequestContext | None, instance_uuid: str, host: str) -> None:
    """NoValidHost when ``host`` would break the server's group (for a host chosen
    without the scheduler, e.g. a rebuild in place or an unshelve to a named host)."""
    placed = hosts_for_group(ctx, instance_uuid)
    if placed is not None and not placed.allows(host):
        raise exception.NoValidHost(reason=placed.why_not(host) + ".")


def filter_hosts(placed: GroupHosts | None, hosts: list[HostState]) -> list[HostState]:
    """The hosts the group allows; NoValidHost naming the group when it allows none."""
    if placed is None or not hosts:
        return hosts
    allowed = [h for h in hosts if placed.allows(h.host)]
    if not allowed:
        raise exception.NoValidHost(
            reason=f"Every candidate host is refused by {placed.why_not()}.")
    return allowed


def weigh(placed: GroupHosts | None, hosts: list[HostState]) -> list[HostState]:
    """Add the soft policies' preference to hosts already weighed, best first again."""
    if placed is None or placed.policy not in (groups.SOFT_AFFINITY,
                                               groups.SOFT_ANTI_AFFINITY) or not hosts:
        return hosts
    counts = [placed.hosts.get(h.host, 0) for h in hosts]
    low, high = min(counts), max(counts)
    if high == low:
        return hosts
    for host, n in zip(hosts, counts, strict=True):
        score = (n - low) / (high - low)
        if placed.policy == groups.SOFT_ANTI_AFFINITY:
            score = 1.0 - score
        host.weight += SOFT_WEIGHT_MULTIPLIER * score
    return sorted(hosts, key=lambda h: (-h.weight, h.host))
