"""GET /servers and /servers/detail: which servers a caller sees, in what order, a page at a time.

What is parsed here (filters, sort keys, limit, marker) is handed whole to
``compute.api.API.list``, which asks every cell for one sorted page and merges
them (``compute.server_list``): the filters the database can apply become SQL,
the others (``checks``, regular expressions and the like) are tested in Python
on each cell's rows before its page is cut, so adding a filter here never means
touching how cells are read.

Who may filter by what follows Nova: a fixed set of parameters for everyone,
growing with the microversion (``changes-before`` at 2.66, ``locked`` at 2.73,
the instance fields of 2.83), and every parameter for whom the
``allow_all_filters`` rule admits. Parameters a caller may not use are dropped
quietly; from 2.75 a parameter Nova does not know at all is a 400.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import webob

from transcell import exception, policy
from transcell.api.compute import common
from transcell.api.compute.app import api_version
from transcell.api.compute.microversion import APIVersion
from transcell.compute import vm_states
from transcell.db.types import isotime
from transcell.wsgi.app import context_of

PAGING_AND_SORTING = ("limit", "marker", "sort_key", "sort_dir")

#: What Nova lets every caller filter by, by microversion.
USER_FILTERS = ("reservation_id", "name", "status", "image", "flavor", "ip", "changes-since",
                "all_tenants")
USER_FILTERS_25 = ("ip6",)
TAG_FILTERS = ("tags", "tags-any", "not-tags", "not-tags-any")
USER_FILTERS_283 = ("availability_zone", "config_drive", "key_name", "created_at",
                    "launched_at", "terminated_at", "power_state", "task_state", "vm_state",
                    "progress", "user_id")

#: Filters naming tables joined to instances: Nova refuses them outright.
JOINED_TABLES = ("block_device_mapping", "services", "metadata", "system_metadata",
                 "info_cache", "security_groups", "pci_devices")

#: Every parameter Nova's 2.73 query schema names; from 2.75 nothing else is accepted.
KNOWN_PARAMETERS = frozenset((
    "user_id", "project_id", "tenant_id", "launch_index", "image_ref", "image", "kernel_id",
    "ramdisk_id", "hostname", "key_name", "power_state", "vm_state", "task_state", "host",
    "node", "flavor", "reservation_id", "launched_at", "terminated_at", "availability_zone",
    "name", "display_name", "description", "display_description", "locked_by", "uuid",
    "root_device_name", "config_drive", "access_ip_v4", "access_ip_v6", "auto_disk_config",
    "progress", "sort_key", "sort_dir", "all_tenants", "soft_deleted", "deleted", "status",
    "changes-since", "changes-before", "ip", "ip6", "created_at", "locked", "limit",
    "marker") + TAG_FILTERS + JOINED_TABLES)

#: Query parameters that name a point in time (ISO 8601); anything else is a 400.
TIME_PARAMETERS = ("changes-since", "changes-before", "created_at", "launched_at",
                   "terminated_at")

#: Exact-match filters on an instance column (a repeated parameter matches any value).
EXACT = {"user_id": "user_id", "vm_state": "vm_state", "task_state": "task_state",
         "uuid": "uuid", "launch_index": "launch_index"}

#: Regular-expression filters (``re.search``) on an instance column, as Nova matches them.
REGEX = {"description": "display_description",
         "display_description": "display_description", "hostname": "hostname",
         "key_name": "key_name", "availability_zone": "availability_zone",
         "config_drive": "config_drive", "power_state": "power_state", "progress": "progress",
         "node": "node", "reservation_id": "reservation_id", "created_at": "created_at",
         "launched_at": "launched_at", "terminated_at": "terminated_at",
         "locked_by": "locked_by", "root_device_name": "root_device_name",
         "access_ip_v4": "access_ip_v4", "access_ip_v6": "access_ip_v6",
         "auto_disk_config": "auto_disk_config", "kernel_id": "kernel_id",
         "ramdisk_id": "ramdisk_id"}

#: Sort keys Nova accepts but ignores; from 2.75 they are refused.
IGNORED_SORT_KEYS = ("architecture", "cell_name", "cleaned", "default_ephemeral_device",
                     "default_swap_device", "deleted", "deleted_at", "disable_terminate",
                     "ephemeral_gb", "ephemeral_key_uuid", "id", "key_data", "launched_on",
                     "locked", "memory_mb", "os_type", "reservation_id", "root_gb",
                     "shutdown_terminate", "user_data", "vcpus", "vm_mode")
SORT_KEYS = ("access_ip_v4", "access_ip_v6", "auto_disk_config", "availability_zone",
             "config_drive", "created_at", "display_description", "display_name", "host",
             "hostname", "image_ref", "instance_type_id", "kernel_id", "key_name",
             "launch_index", "launched_at", "locked_by", "node", "power_state", "progress",
             "project_id", "ramdisk_id", "root_device_name", "task_state", "terminated_at",
             "updated_at", "user_id", "uuid", "vm_state")
ADMIN_SORT_KEYS = ("host", "node")
#: What Nova sorts by after the caller's keys, so an order is always total.
DEFAULT_SORT = ("created_at", "id")


def user_filters(version: APIVersion) -> set[str]:
    allowed = set(USER_FILTERS)
    if version.matches("2.5"):
        allowed.update(USER_FILTERS_25)
    if version.matches("2.26"):
        allowed.update(TAG_FILTERS)
    if version.matches("2.66"):
        allowed.add("changes-before")
    if version.matches("2.73"):
        allowed.add("locked")
    if version.matches("2.83"):
        allowed.update(USER_FILTERS_283)
    return allowed


def _text(value: Any) -> str:
    """A column value as regular-expression filters see it: timestamps as the API
    shows them, booleans as 0/1."""
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, dt.datetime):
        return isotime(value) or ""
    return str(value)


def _fixed_ips(server: dict, version: int) -> list[str]:
    return [ip["ip_address"] for vif in server["vifs"]
            for ip in (vif.get("info") or {}).get("fixed_ips", [])
            if ip.get("version", 4) == version]


def _compile(name: str, pattern: str) -> re.Pattern:
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise exception.Invalid(f"Invalid regular expression for {name}: {exc}") from None


@dataclass
class Listing:
    """What one list request asks for, parsed and checked before any cell is read."""

    db_filters: dict[str, Any]
    checks: list[Callable[[dict], bool]] = field(default_factory=list)
    sort: list[tuple[str, bool]] = field(default_factory=list)  # (column, descending)
    limit: int = common.MAX_LIMIT
    marker: str | None = None
    empty: bool = False
    #: 2.69: servers of cells that are down are listed by what the API database knows.
    #: Nova allows it only when nothing but ``all_tenants`` narrows, sorts or pages the
    #: list, since those records lack every field the rest would need.
    cell_down_support: bool = False


def _last(req: webob.Request, name: str) -> str:
    """Nova reads a repeated filter as its last value."""
    return req.GET.getall(name)[-1]


def _sort(req: webob.Request, version: APIVersion, admin: bool) -> list[tuple[str, bool]]:
    """(column, descending) pairs, Nova's way: defaults first, ignored keys dropped with
    their direction, then created_at and id appended in the first direction given."""
    keys = [k.strip() for k in req.GET.getall("sort_key")] or ["created_at"]
    dirs = [d.strip() for d in req.GET.getall("sort_dir")] or ["desc"]
    valid = set(SORT_KEYS) | set(IGNORED_SORT_KEYS)
    ignored = set(IGNORED_SORT_KEYS)
    if version.matches("2.73"):
        ignored.discard("locked")
    if version.matches("2.75"):
        valid -= ignored
    for key in keys:
        if key not in valid:
            raise exception.ValidationError(
                f"Invalid input for query parameters sort_key. Value: {key}. '{key}' is not "
                f"one of {sorted(valid)}")
    for index in reversed(range(len(keys))):
        if keys[index] in ignored:
            if len(dirs) > index:
                dirs.pop(index)
            keys.pop(index)
        elif keys[index] in ADMIN_SORT_KEYS and not admin:
            raise exception.Forbidden(f"Only administrators can sort servers by {keys[index]}")
    for value in dirs:
        if value not in ("asc", "desc"):
            raise exception.Invalid("Invalid input received: Unknown sort direction, must be "
                                    "'desc' or 'asc'")
    if len(dirs) > len(keys):
        raise exception.Invalid("Invalid input received: Sort direction size exceeds sort "
                                "key size")
    default_dir = dirs[0] if dirs else "asc"
    dirs += [default_dir] * (len(keys) - len(dirs))
    for key in DEFAULT_SORT:
        if key not in keys:
            keys.append(key)
            dirs.append(default_dir)
    return [(key, direction == "desc") for key, direction in zip(keys, dirs, strict=True)]


def _limit(req: webob.Request) -> int:
    if "limit" not in req.GET:
        return common.MAX_LIMIT
    try:
        limit = int(_last(req, "limit"))
    except ValueError as exc:
        raise exception.Invalid("limit param must be an integer") from exc
    if limit < 0:
        raise exception.Invalid("limit param must be positive")
    return min(limit, common.MAX_LIMIT)


def _bool_param(value: str, name: str) -> bool:
    try:
        return common.parse_bool(value)
    except ValueError as exc:
        raise exception.Invalid(f"Invalid input received: {exc}") from None


def _visible_params(req: webob.Request, version: APIVersion) -> set[str]:
    """The parameters this caller's request is read with (Nova's remove_invalid_options)."""
    ctx = context_of(req)
    names = set(req.GET.keys())
    if version.matches("2.75"):
        common.reject_unknown_query(req, KNOWN_PARAMETERS | {n for n in names
                                                             if n.startswith("_")})
    if policy.check(ctx, "os_compute_api:servers:allow_all_filters"):
        refused = sorted(n for n in names if n in JOINED_TABLES or n.startswith("_"))
        if refused:
            raise exception.Invalid(f"Invalid filter field: {refused[0]}.")
        return names - set(PAGING_AND_SORTING)
    return names & user_filters(version)


def parse(req: webob.Request, detail: bool) -> Listing:
    """Read and check every query parameter; nothing is read from a cell yet."""
    ctx = context_of(req)
    version = api_version(req)
    params = req.GET
    # Time filters must be times whether or not this caller may use them, as
    # Nova's query schema checks them before filters are dropped.
    for name in TIME_PARAMETERS:
        for value in params.getall(name):
            common.parse_time(name, value)
    usable = _visible_params(req, version)
    listing = Listing({"project_id": ctx.project_id})
    db = listing.db_filters

    if "all_tenants" in usable:
        value = _last(req, "all_tenants")
        if value == "" or _bool_param(value, "all_tenants"):
            rule = "detail" if detail else "index"
            policy.authorize(ctx, f"os_compute_api:servers:{rule}:get_all_tenants", {})
            db["project_id"] = params.get("project_id") or params.get("tenant_id")
    if "deleted" in params and _bool_param(_last(req, "deleted"), "deleted"):
        if not ctx.is_admin:
            raise exception.Forbidden(action="deleted=True")
        # deleted servers are not listed by this API; an admin asking gets none
        listing.empty = True
    for key, column in (("name", "name"), ("display_name", "name"), ("image", "image"),
                        ("image_ref", "image"), ("flavor", "flavor"), ("host", "host")):
        if key in usable and params.get(key) and column not in db:
            db[column] = _last(req, key)
    if "status" in usable and params.get("status"):
        states: set[str] = set()
        for status in params.getall("status"):
            states |= vm_states.vm_states_for_status(status)
        # Nova answers an unknown status with an empty list
        db["vm_states"] = sorted(states) or ["__none__"]
    since = before = None
    if "changes-since" in usable:
        since = common.parse_time("changes-since", _last(req, "changes-since"))
        db["changes-since"] = since
    if "changes-before" in usable and version.matches("2.66"):
        before = common.parse_time("changes-before", _last(req, "changes-before"))
        if since is not None and before < since:
            raise exception.Invalid("The value of changes-since must be less than or equal "
                                    "to changes-before.")
        listing.checks.append(lambda s, b=before: s["updated_at"] is not None
                              and s["updated_at"] <= b)
    if version.matches("2.26"):
        for key in TAG_FILTERS:
            if key in usable and params.get(key):
                db[key] = _last(req, key).split(",")
    if "locked" in usable and version.matches("2.73"):
        wanted = _bool_param(_last(req, "locked"), "locked")
        listing.checks.append(lambda s, w=wanted: bool(s["locked"]) == w)
    for key, version_number in (("ip", 4), ("ip6", 6)):
        if key in usable and not (key == "ip6" and not version.matches("2.5")):
            pattern = _compile(key, _last(req, key))
            listing.checks.append(lambda s, p=pattern, n=version_number: any(
                p.search(ip) for ip in _fixed_ips(s, n)))
    for key, column in EXACT.items():
        if key in usable:
            values = {str(v) for v in params.getall(key)}
            listing.checks.append(lambda s, c=column, v=values: str(s.get(c)) in v)
    for key, column in REGEX.items():
        if key in usable:
            pattern = _compile(key, _last(req, key))
            listing.checks.append(lambda s, c=column, p=pattern: s.get(c) is not None
                                  and p.search(_text(s[c])) is not None)
    listing.sort = _sort(req, version, ctx.is_admin)
    listing.limit = _limit(req)
    listing.marker = params.get("marker")
    listing.cell_down_support = (version.matches("2.69") and not listing.empty
                                 and not any(p in params for p in PAGING_AND_SORTING)
                                 and usable <= {"all_tenants"})
    return listing
