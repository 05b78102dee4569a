"""The ``same_host`` and ``different_host`` scheduler hints (Nova's SameHostFilter and
DifferentHostFilter): a server placed beside, or away from, servers named by uuid.

The named servers' hosts are read from every cell when the request is scheduled, as
the server group filters read their members' (``scheduler.groups``), so the hints
hold across cells and after the named servers have moved. They are kept in the
request spec, so a later move of the server is held to them as well.
"""

from __future__ import annotations

from transcell import exception
from transcell.scheduler import groups
from transcell.scheduler.host_state import HostState

SAME_HOST = "same_host"
DIFFERENT_HOST = "different_host"
#: The names Tempest's ``scheduler_enabled_filters`` knows these filters by.
FILTER_NAMES = ("SameHostFilter", "DifferentHostFilter")


def _uuids(spec: dict, key: str) -> list[str]:
    value = (spec.get("scheduler_hints") or {}).get(key) or []
    return [value] if isinstance(value, str) else [str(v) for v in value]


def filter_hosts(spec: dict, hosts: list[HostState],
                 states: dict[str, HostState] | None = None) -> list[HostState]:
    """The hosts both hints allow; NoValidHost saying which hint refused them all."""
    for key in (SAME_HOST, DIFFERENT_HOST):
        named = _uuids(spec, key)
        if not named or not hosts:
            continue
        occupied = set(groups.hosts_of(named, spec.get("instance_uuid"), states))
        if key == SAME_HOST:
            hosts = [h for h in hosts if h.host in occupied]
        else:
            hosts = [h for h in hosts if h.host not in occupied]
        if not hosts:
            raise exception.NoValidHost(
                reason=f"Every candidate host is refused by the {key} hint "
                       f"({', '.join(named)}).")
    return hosts
