"""What ``POST /servers`` checks beyond the body's shape, and how it makes several.

Every refusal here comes before the first server is recorded, so a refused
request leaves nothing behind: not a server, not a group membership, not a
reserved port. ``min_count``/``max_count`` then create the servers one after
the other (each through the same path as a single build), named ``name-1`` ...
``name-N`` as Nova names them, sharing one reservation id.
"""

from __future__ import annotations

import base64
import binascii
import uuid as uuidlib
from dataclasses import dataclass
from typing import Any

from transcell import exception, quota
from transcell.api.compute import flavors
from transcell.api.compute.server_metadata import check_metadata_count
from transcell.compute import server_groups as groups
from transcell.context import RequestContext
from transcell.registry import services


@dataclass(frozen=True)
class Count:
    minimum: int
    maximum: int


def _count(server: dict, key: str, default: int) -> int:
    value = server.get(key, default)
    try:
        number = int(str(value))
    except ValueError:
        number = 0
    if number < 1:
        raise exception.ValidationError(
            f"Invalid input for field/attribute {key}. Value: {value}. {value!r} is not a "
            "positive integer")
    return number


def counts(server: dict) -> Count:
    minimum = _count(server, "min_count", 1)
    maximum = _count(server, "max_count", minimum)
    if minimum > maximum:
        raise exception.Invalid("min_count must be <= max_count")
    return Count(minimum, maximum)


def names(name: str, number: int) -> list[str]:
    """Nova's display names: the name itself for one server, ``name-1``... for several."""
    if number == 1:
        return [name]
    return [f"{name}-{i}" for i in range(1, number + 1)]


def reservation_id() -> str:
    return "r-" + uuidlib.uuid4().hex[:8]


def how_many(ctx: RequestContext, flavor: dict, count: Count) -> int:
    """As many servers as asked, or as many as the quota leaves if that is still at
    least ``min_count``; Nova's 403 (for ``min_count``) otherwise."""
    refusal: exception.OverQuota | None = None
    for number in range(count.maximum, count.minimum - 1, -1):
        try:
            quota.check_deltas(ctx, ctx.project_id, instances=number,
                               cores=number * flavor["vcpus"],
                               ram=number * flavor["memory_mb"])
            return number
        except exception.OverQuota as exc:
            refusal = exc
    assert refusal is not None
    raise refusal


def flavor_usable(ctx: RequestContext, flavor: dict) -> None:
    """A private flavor is usable only by projects it is shared with (and admins)."""
    try:
        flavors.find_flavor(ctx, flavor["flavorid"])
    except exception.FlavorNotFound:
        raise exception.Invalid(f"Flavor {flavor['flavorid']} could not be found; check "
                                "flavorRef.") from None


def image_fits(image: dict, flavor: dict) -> None:
    """The image's ``min_ram`` against the flavor (``min_disk`` is checked with the disk)."""
    min_ram = int(image.get("min_ram") or 0)
    if min_ram and flavor["memory_mb"] < min_ram:
        raise exception.Invalid(f"Flavor's memory is too small for requested image: image "
                                f"needs {min_ram} MB, flavor has {flavor['memory_mb']} MB.")


def check_metadata(ctx: RequestContext, server: dict) -> None:
    check_metadata_count(ctx.project_id, len(server.get("metadata") or {}))


class PersonalityLimit(exception.OverQuota):
    pass


def check_personality(ctx: RequestContext, server: dict) -> None:
    """Nova's limits on injected files (before 2.57): 403 over a limit, 400 for content
    that is not base64."""
    files = server.get("personality") or []
    allowed = groups.limit_of("injected_files", ctx.project_id)
    if allowed != quota.UNLIMITED and len(files) > allowed:
        raise PersonalityLimit("Personality file limit exceeded")
    path_limit = groups.limit_of("injected_file_path_length", ctx.project_id)
    content_limit = groups.limit_of("injected_file_content_bytes", ctx.project_id)
    for item in files:
        if not isinstance(item, dict) or not isinstance(item.get("path"), str):
            raise exception.ValidationError("Invalid input for field/attribute personality: "
                                            "each item needs a path and contents.")
        path, contents = item["path"], item.get("contents") or ""
        try:
            raw = base64.b64decode(str(contents), validate=True)
        except (binascii.Error, ValueError):
            raise exception.Invalid(f"Personality content for {path} cannot be "
                                    "decoded") from None
        if path_limit != quota.UNLIMITED and len(path) > path_limit:
            raise PersonalityLimit(f"Personality file path exceeds maximum {path_limit}")
        if content_limit != quota.UNLIMITED and len(raw) > content_limit:
            raise PersonalityLimit(f"Personality file content exceeds maximum {content_limit}")


def check_security_groups(ctx: RequestContext, server: dict) -> list[dict[str, str]]:
    """Every named security group must be one of the project's (by name or id): 400.

    Returns the groups asked for, each once, as ``{"id", "name"}``: the server's ports
    are built with exactly these (none asked for: the project's default group)."""
    wanted = [g.get("name") for g in server.get("security_groups") or []]
    if not wanted:
        return []
    lister = getattr(services.network, "list_security_groups", None)
    if lister is None:
        return []
    known: dict[str, dict[str, str]] = {}
    for group in lister(ctx):
        if ctx.is_admin and group.get("project_id") not in (ctx.project_id, None):
            continue
        entry = {"id": group["id"], "name": group.get("name") or group["id"]}
        known.setdefault(group["id"], entry)
        if group.get("name"):
            known.setdefault(group["name"], entry)
    found: list[dict[str, str]] = []
    for name in wanted:
        if name not in known:
            raise exception.Invalid(f"Security group {name} not found for project "
                                    f"{ctx.project_id}.")
        if known[name] not in found:
            found.append(known[name])
    return found


def check_ports(requested: Any, number: int) -> None:
    """One port, or one fixed address, cannot serve several servers."""
    if number <= 1 or not isinstance(requested, list):
        return
    if any(item.get("port") for item in requested):
        raise exception.Invalid("Unable to launch multiple instances with a single configured "
                                "port ID. Please launch your instance one by one with "
                                "different ports.")
    if any(item.get("fixed_ip") for item in requested):
        raise exception.Invalid("Unable to launch multiple instances with a single configured "
                                "fixed IP address.")


def group_hint(ctx: RequestContext, body: dict) -> groups.Group | None:
    """The server group named by ``os:scheduler_hints`` ``group``; 400 for one the caller
    does not have."""
    hints = body.get("os:scheduler_hints") or body.get("OS-SCH-HNT:scheduler_hints") or {}
    hint = hints.get("group")
    if isinstance(hint, list):
        if len(hint) != 1:
            raise exception.ValidationError("Invalid input for field/attribute group. Value: "
                                            f"{hint}. Only one server group may be named.")
        hint = hint[0]
    if hint is None:
        return None
    try:
        uuidlib.UUID(str(hint))
        return groups.visible(ctx, str(hint))
    except ValueError:
        raise exception.ValidationError(f"Invalid input for field/attribute group. Value: "
                                        f"{hint}. '{hint}' is not a 'uuid'") from None
    except groups.GroupNotFound:
        raise exception.Invalid(f"Invalid server group {hint}: no such group.") from None


def placement_hints(body: dict) -> dict[str, list[str]]:
    """``same_host`` and ``different_host`` hints: a server uuid or a list of them."""
    hints = body.get("os:scheduler_hints") or body.get("OS-SCH-HNT:scheduler_hints") or {}
    found: dict[str, list[str]] = {}
    for key in ("same_host", "different_host"):
        if key not in hints:
            continue
        value = hints[key]
        values = [value] if isinstance(value, str) else value
        if not isinstance(values, list) or not all(
                isinstance(v, str) and _is_uuid(v) for v in values):
            raise exception.ValidationError(f"Invalid input for field/attribute {key}. "
                                            f"Value: {value}. {value!r} is not a 'uuid'")
        found[key] = list(values)
    return found


def _is_uuid(value: str) -> bool:
    try:
        uuidlib.UUID(value)
    except ValueError:
        return False
    return True
