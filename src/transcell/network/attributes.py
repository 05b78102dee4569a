"""What a client may send for each resource, checked the way Neutron checks it.

Each resource declares its attributes once: whether they may be given on
create or changed on update, how a value is converted, and whether only an
administrator may set it. The service checks bodies here, so a caller over RPC
gets the same answers as a caller over HTTP.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from transcell import exception
from transcell.context import RequestContext
from transcell.network import exceptions as exc
from transcell.network.ipam import parse_ip

Converter = Callable[[str, Any], Any]
_MAC = re.compile(r"^([0-9a-f]{2}:){5}[0-9a-f]{2}$")
#: C0 and C1 control characters, DEL, and the Unicode line and paragraph separators.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_UNSET = object()


def _bad(name: str, reason: str) -> exception.Invalid:
    return exception.Invalid(f"Invalid input for {name}. Reason: {reason}.")


def string(max_len: int = 255) -> Converter:
    """Text without control characters: names, ids and tags end up in logs, consoles
    and other services' databases, where NUL or an escape sequence does harm."""
    def convert(name: str, value: Any) -> str:
        if not isinstance(value, str):
            raise _bad(name, f"'{value}' is not a valid string")
        if len(value) > max_len:
            raise _bad(name, f"'{value[:max_len]}...' exceeds maximum length of {max_len}")
        if _CONTROL.search(value):
            raise _bad(name, f"{value!r} contains a control character")
        return value
    return convert


def boolean(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "1"):
        return True
    if isinstance(value, str) and value.lower() in ("false", "0"):
        return False
    raise _bad(name, f"'{value}' cannot be converted to boolean")


def integer(low: int, high: int) -> Converter:
    def convert(name: str, value: Any) -> int:
        try:
            number = int(value)
        except (TypeError, ValueError):
            raise _bad(name, f"'{value}' is not an integer") from None
        if isinstance(value, bool) or not low <= number <= high:
            raise _bad(name, f"'{value}' is not in the range {low} to {high}")
        return number
    return convert


def choice(*values: Any) -> Converter:
    def convert(name: str, value: Any) -> Any:
        if value not in values:
            raise _bad(name, f"'{value}' is not in {list(values)}")
        return value
    return convert


def ip_version(name: str, value: Any) -> int:
    return choice(4, 6)(name, integer(4, 6)(name, value))


def ip_or_none(name: str, value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise _bad(name, f"'{value}' is not a valid IP address")
    return str(parse_ip(value))


def string_list(name: str, value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _bad(name, f"'{value}' is not a list of strings")
    for item in value:
        string(255)(name, item)
    if len(set(value)) != len(value):
        raise _bad(name, f"Duplicate items in the list: '{value}'")
    return list(value)


def ip_list(name: str, value: Any) -> list[str]:
    return [str(parse_ip(v)) for v in string_list(name, value)]


def dict_list(*keys: str, optional: tuple[str, ...] = ()) -> Converter:
    """A list of objects with exactly the given keys (plus optional ones)."""
    def convert(name: str, value: Any) -> list[dict[str, Any]]:
        if not isinstance(value, list):
            raise _bad(name, f"'{value}' is not a list")
        items = []
        for item in value:
            if not isinstance(item, dict):
                raise _bad(name, f"'{item}' is not a dictionary")
            unknown = set(item) - set(keys) - set(optional)
            missing = set(keys) - set(item)
            if unknown or missing:
                raise _bad(name, f"'{item}' must have the keys {sorted(keys)}")
            items.append(dict(item))
        return items
    return convert


def fixed_ips(name: str, value: Any) -> list[dict[str, str]]:
    items = dict_list(optional=("subnet_id", "ip_address"))(name, value)
    for item in items:
        if not item:
            raise _bad(name, "each fixed IP needs a subnet_id or an ip_address")
        if "ip_address" in item:
            item["ip_address"] = str(parse_ip(item["ip_address"]))
    return items


def optional(convert: Converter) -> Converter:
    """``convert``, or None kept as None."""
    def maybe(name: str, value: Any) -> Any:
        return None if value is None else convert(name, value)
    return maybe


def mapping(name: str, value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _bad(name, f"'{value}' is not a dictionary")
    return value


def mac_address(name: str, value: Any) -> str:
    if not isinstance(value, str) or not _MAC.match(value.lower()):
        raise _bad(name, f"'{value}' is not a valid MAC address")
    return value.lower()


def uuid_like(name: str, value: Any) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"[0-9a-fA-F-]{32,36}", value):
        raise _bad(name, f"'{value}' is not a valid UUID")
    return value


@dataclass(frozen=True)
class Attr:
    convert: Converter
    post: bool = True
    put: bool = False
    required: bool = False
    #: set by administrators only, unless the value equals ``default``
    admin: bool = False
    default: Any = _UNSET
    #: on create, the owner of the network may set it too (the service checks that)
    net_owner_creates: bool = False


_PROJECT = {
    "tenant_id": Attr(string(255)),
    "project_id": Attr(string(255)),
}
_STANDARD = {
    "description": Attr(string(255), put=True),
    "tags": Attr(string_list),
}

NETWORK: Mapping[str, Attr] = {
    "id": Attr(uuid_like),
    "name": Attr(string(255), put=True),
    "admin_state_up": Attr(boolean, put=True),
    "shared": Attr(boolean, put=True, admin=True, default=False),
    "mtu": Attr(integer(68, 9216), put=True),
    "router:external": Attr(boolean, put=True, admin=True, default=False),
    "port_security_enabled": Attr(boolean, put=True),
    **_PROJECT,
    **_STANDARD,
}

SUBNET: Mapping[str, Attr] = {
    "id": Attr(uuid_like),
    "name": Attr(string(255), put=True),
    "network_id": Attr(string(36), required=True),
    "cidr": Attr(string(64), required=True),
    "ip_version": Attr(ip_version),
    "gateway_ip": Attr(ip_or_none, put=True),
    "allocation_pools": Attr(dict_list("start", "end"), put=True),
    "enable_dhcp": Attr(boolean, put=True),
    "dns_nameservers": Attr(ip_list, put=True),
    "host_routes": Attr(dict_list("destination", "nexthop"), put=True),
    "subnetpool_id": Attr(choice(None)),
    "segment_id": Attr(optional(string(36)), put=True, admin=True, default=None),
    **_PROJECT,
    **_STANDARD,
}

#: the transcell-vif extension's port attributes (see ``PORT``)
CREATED_FOR_INSTANCE = "transcell:created_for_instance"
VIF_TAG = "transcell:vif_tag"
VIF_INDEX = "transcell:vif_index"

VNIC_TYPES = ("normal", "direct", "macvtap", "baremetal", "direct-physical",
              "virtio-forwarder", "smart-nic", "remote-managed")

PORT: Mapping[str, Attr] = {
    "id": Attr(uuid_like),
    "name": Attr(string(255), put=True),
    "network_id": Attr(string(36), required=True),
    "admin_state_up": Attr(boolean, put=True),
    "mac_address": Attr(mac_address, put=True, admin=True, net_owner_creates=True),
    "fixed_ips": Attr(fixed_ips, put=True),
    "device_id": Attr(string(255), put=True),
    "device_owner": Attr(string(255), put=True),
    "security_groups": Attr(string_list, put=True),
    "port_security_enabled": Attr(boolean, put=True),
    "binding:host_id": Attr(string(255), put=True, admin=True, default=""),
    "binding:vnic_type": Attr(choice(*VNIC_TYPES), put=True),
    "binding:profile": Attr(mapping, put=True, admin=True, default={}),
    # transcell-vif: what compute records on a server's port, since the network
    # service (not each compute host) remembers it; administrators and services only
    CREATED_FOR_INSTANCE: Attr(boolean, put=True, admin=True, default=False),
    VIF_TAG: Attr(optional(string(255)), put=True, admin=True, default=None),
    VIF_INDEX: Attr(integer(0, 2**31 - 1), put=True, admin=True, default=0),
    **_PROJECT,
    **_STANDARD,
}

#: attribute name -> model column, where they differ
COLUMNS = {
    "router:external": "router_external",
    "binding:vnic_type": "vnic_type",
    "binding:profile": "binding_profile",
    CREATED_FOR_INSTANCE: "created_for_instance",
    VIF_TAG: "vif_tag",
    VIF_INDEX: "vif_index",
}


def check(resource: str, spec: Mapping[str, Attr], body: Any, ctx: RequestContext,
          creating: bool) -> dict[str, Any]:
    """Converted attributes of a create or update body, or the error Neutron gives."""
    if not isinstance(body, dict):
        raise exception.Invalid(f"Body of a {resource} must be a JSON object.")
    unknown = sorted(set(body) - set(spec))
    if unknown:
        raise exception.Invalid(f"Unrecognized attribute(s) '{', '.join(unknown)}'")
    values: dict[str, Any] = {}
    for name, value in body.items():
        attr = spec[name]
        if creating and not attr.post:
            raise exception.Invalid(f"Attribute '{name}' not allowed in POST")
        if not creating and not attr.put:
            raise exception.Invalid(f"Cannot update read-only attribute {name}")
        values[name] = attr.convert(name, value)
        if attr.admin and not ctx.is_admin and values[name] != attr.default \
                and not (creating and attr.net_owner_creates):
            verb = "create" if creating else "update"
            raise exc.PolicyNotAuthorized(action=f"{verb}_{resource}:{name}")
    if creating:
        missing = [name for name, attr in spec.items() if attr.required and name not in body]
        if missing:
            raise exception.Invalid(f"Failed to parse request. Required attribute "
                                    f"'{missing[0]}' not specified")
    return values


def owner_project(ctx: RequestContext, values: dict[str, Any]) -> str:
    """The project a new resource belongs to; only admins create for others."""
    tenant = values.pop("tenant_id", None)
    project = values.pop("project_id", None)
    if tenant and project and tenant != project:
        raise exception.Invalid("'project_id' and 'tenant_id' do not match")
    wanted = project or tenant or ctx.project_id
    if not wanted:
        raise exception.Invalid("Running without keystone AuthN requires that "
                                "tenant_id is specified")
    if wanted != ctx.project_id and not ctx.is_admin:
        raise exception.Invalid("Specifying 'project_id' or 'tenant_id' other than the "
                                "authenticated project in request requires admin privileges")
    return wanted


def apply(row: Any, values: Mapping[str, Any]) -> None:
    """Copy plain attributes onto a model row (special ones are handled by the caller)."""
    for name, value in values.items():
        setattr(row, COLUMNS.get(name, name), value)
