"""Host filters: each says whether one host may take the request, and why not."""

from __future__ import annotations

from collections.abc import Callable

from transcell.scheduler import request
from transcell.scheduler.host_state import HostState

Filter = Callable[[HostState, dict], bool]


def compute_filter(host: HostState, spec: dict) -> bool:
    """Only hosts whose compute service is up and enabled."""
    return host.service_up and not host.service_disabled


def availability_zone_filter(host: HostState, spec: dict) -> bool:
    zone = spec.get("availability_zone")
    return not zone or host.availability_zone == zone


def ignore_hosts_filter(host: HostState, spec: dict) -> bool:
    return host.host not in (spec.get("ignore_hosts") or [])


def requested_host_filter(host: HostState, spec: dict) -> bool:
    """A requested destination is the only place the request may go.

    A move asks for a ``host``; a build from 2.74 for a ``host``, a ``node``
    (hypervisor hostname) or both, each of which must then match.
    """
    wanted = spec.get("requested_destination") or {}
    if wanted.get("host") and host.host != wanted["host"]:
        return False
    return not wanted.get("node") or host.nodename == wanted["node"]


def same_cell_move_filter(host: HostState, spec: dict) -> bool:
    """A move not allowed to cross cells stays in its source cell.

    Placement was already asked only for the source cell's aggregate; this
    keeps the rule true even for a candidate that came back some other way.
    """
    move = request.move(spec)
    return move is None or move.allow_cross_cell or host.cell.uuid == move.source_cell_uuid


FILTERS: list[Filter] = [compute_filter, availability_zone_filter, ignore_hosts_filter,
                         requested_host_filter, same_cell_move_filter]


def filter_hosts(hosts: list[HostState], spec: dict) -> list[HostState]:
    for check in FILTERS:
        hosts = [h for h in hosts if check(h, spec)]
    return hosts
