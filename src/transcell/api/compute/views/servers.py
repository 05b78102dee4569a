"""Server bodies, exactly as Nova shapes them at each microversion.

Tempest checks the 2.1 bodies against schemas that allow no extra keys, so
every key added at a later microversion is added only behind its version.

The body ``PUT /servers/{id}`` answers with is a subset of the one ``GET``
shows until 2.75, which made the two the same.

From 2.69 a server whose cell is down (a record marked ``unavailable``) is
shown with what the API database knows of it and ``status`` ``UNKNOWN``.
"""

from __future__ import annotations

from typing import Any

import webob

from transcell import policy
from transcell.api.compute import common
from transcell.api.compute.app import api_version
from transcell.api.compute.common import resource_links
from transcell.compute import server_groups, vm_states
from transcell.db.types import isotime, isotime_micro
from transcell.wsgi.app import context_of

_PROGRESS_STATUSES = {"ACTIVE", "BUILD", "REBUILD", "RESIZE", "VERIFY_RESIZE", "MIGRATING"}


links = resource_links


#: From this microversion an update answers with everything a show does.
FULL_UPDATE_BODY = "2.75"


#: The microversions a server's body changes at.
_BODY_VERSIONS = ("2.3", "2.9", "2.16", "2.19", "2.26", "2.47", "2.63", "2.71", "2.73",
                  FULL_UPDATE_BODY, "2.90")
_AT_KEY = "transcell.server_body_versions"


def _at(req: webob.Request) -> dict[str, bool]:
    """Which of ``_BODY_VERSIONS`` the request's microversion has reached, worked out
    once per request: a page of a thousand bodies would otherwise compare versions
    ten thousand times."""
    at = req.environ.get(_AT_KEY)
    if at is None:
        version = api_version(req)
        at = req.environ[_AT_KEY] = {v: version.matches(v) for v in _BODY_VERSIONS}
    return at


#: Parts of bodies a page's servers share (a list's, set up by ``prepare_page``).
_SHARED_KEY = "transcell.server_body_shared"


def _shared(req: webob.Request, key: tuple, make) -> Any:
    """``make()``, or within a list what it made for an earlier server of the page: the
    page's bodies are written out once and never changed, so they may share parts."""
    shared = req.environ.get(_SHARED_KEY)
    if shared is None:
        return make()
    try:
        return shared[key]
    except KeyError:
        value = shared[key] = make()
        return value


def host_id(server: dict) -> str:
    return common.host_id(server["project_id"], server["host"])


def security_group_names(vifs: list[dict]) -> list[str]:
    """The groups of the server's ports: recorded on a VIF when add/removeSecurityGroup
    changed them, else the default group every port is built with."""
    names: list[str] = []
    for vif in vifs:
        info = vif.get("info") or {}
        for name in info.get("security_groups", ["default"]):
            if name not in names:
                names.append(name)
    return names


def addresses(server: dict, extended: bool = True) -> dict[str, list[dict]]:
    """Addresses per network; the ``/ips`` resource shows them without the MAC and type."""
    result: dict[str, list[dict]] = {}
    for vif in server["vifs"]:
        info = vif.get("info") or {}
        entries = result.setdefault(info.get("network_name") or vif["network_id"], [])
        for ip in info.get("fixed_ips", []):
            entry = {"version": ip.get("version", 4), "addr": ip["ip_address"]}
            if extended:
                entry["OS-EXT-IPS:type"] = "fixed"
                entry["OS-EXT-IPS-MAC:mac_addr"] = vif["address"]
            entries.append(entry)
    return result


def _flavor(req: webob.Request, server: dict) -> dict:
    flavor = server["flavor"] or {}
    if not flavor:
        # Nova's answer for a server whose flavor copy is gone: an empty object
        return {}
    if _at(req)["2.47"]:
        specs = _allowed(req, "os_compute_api:os-flavor-extra-specs:index",
                         server["project_id"])
        # a page's servers share their flavor copies (``server_list._decoder``), so the
        # copy's identity names the body; the copy rides along so it cannot be freed
        # and its id reused while the page is written
        return _shared(req, ("flavor-2.47", id(flavor), specs),
                       lambda: (flavor, _embedded_flavor(flavor, specs)))[1]
    flavorid = flavor.get("flavorid")
    return _shared(req, ("flavor", flavorid), lambda: {
        "id": flavorid, "links": [links(req, "flavors", flavorid)[1]]})


def _embedded_flavor(flavor: dict, specs: bool) -> dict:
    """The flavor a server's body embeds from 2.47 (a copy, no link)."""
    body = {"vcpus": flavor.get("vcpus"), "ram": flavor.get("memory_mb"),
            "disk": flavor.get("root_gb"), "ephemeral": flavor.get("ephemeral_gb", 0),
            "swap": flavor.get("swap", 0), "original_name": flavor.get("name")}
    if specs:
        body["extra_specs"] = flavor.get("extra_specs") or {}
    return body


def _image(req: webob.Request, server: dict) -> Any:
    if not server["image_ref"]:
        return ""
    ref = server["image_ref"]
    return _shared(req, ("image", ref), lambda: {
        "id": ref, "links": [links(req, "images", ref)[1]]})


def _fault(req: webob.Request, server: dict) -> dict | None:
    fault = server.get("fault")
    if not fault:
        return None
    body = {"code": fault["code"], "created": isotime(fault["created_at"]),
            "message": fault["message"]}
    if fault["code"] != 500 or context_of(req).is_admin:
        body["details"] = fault.get("details") or ""
    return body


def _allowed(req: webob.Request, rule: str, project_id: str) -> bool:
    """``policy.check`` of the request's caller against a project, asked once per request:
    a page of a thousand servers of a few projects would otherwise ask it thousands
    of times, and each asking costs a millisecond."""
    memo = req.environ.setdefault("transcell.policy_memo", {})
    key = (rule, project_id)
    if key not in memo:
        memo[key] = policy.check(context_of(req), rule, {"project_id": project_id})
    return memo[key]


def basic(req: webob.Request, server: dict) -> dict:
    if server.get("unavailable"):
        return {"id": server["uuid"], "status": UNKNOWN,
                "links": links(req, "servers", server["uuid"])}
    return {"id": server["uuid"], "name": server["display_name"],
            "links": links(req, "servers", server["uuid"])}


#: The status of a server whose cell is down (2.69).
UNKNOWN = "UNKNOWN"


def unavailable(req: webob.Request, server: dict, *, shown: bool = False,
                has_ports: bool = False) -> dict:
    """A server whose cell is down, in a detailed list or ``shown`` alone (2.69).

    A list knows only the instance mapping: id, owner's project, creation
    time, and the security groups its ports say it has (``has_ports``). A
    show adds what the request spec recorded at build: image, flavor,
    requested zone (``UNKNOWN`` when none was), owner, and power state 0.
    """
    body: dict[str, Any] = {
        "id": server["uuid"],
        "status": UNKNOWN,
        "tenant_id": server["project_id"],
        "created": isotime(server["created_at"]),
        "links": links(req, "servers", server["uuid"]),
    }
    if not shown:
        if has_ports:
            body["security_groups"] = [{"name": "default"}]
        return body
    body["image"] = _image(req, server)
    body["flavor"] = _flavor(req, server)
    body["OS-EXT-AZ:availability_zone"] = server["availability_zone"] or UNKNOWN
    body["OS-EXT-STS:power_state"] = server["power_state"]
    body["user_id"] = server["user_id"] or UNKNOWN
    if _at(req)["2.71"]:
        # groups live in the API database: known even while the server's cell is down
        body["server_groups"] = server_groups.groups_of(server["uuid"])
    return body


def detail(req: webob.Request, server: dict, *, shown: bool = False,
           updated: bool = False) -> dict:
    """A server's full body: in lists, or ``shown`` alone (GET), or ``updated`` (PUT).

    Lists never carry ``server_groups`` (2.71); below 2.75 an update's body
    leaves out the extended attributes, states, usage, volumes, keypair and
    security groups, and shows addresses without their MAC and type.
    """
    at = _at(req)
    full = not updated or at[FULL_UPDATE_BODY]
    status = vm_states.api_status(server["vm_state"], server["task_state"])
    body: dict[str, Any] = {
        "id": server["uuid"],
        "name": server["display_name"],
        "status": status,
        "tenant_id": server["project_id"],
        "user_id": server["user_id"],
        "metadata": server["metadata"],
        "hostId": host_id(server),
        "image": _image(req, server),
        "flavor": _flavor(req, server),
        "created": isotime(server["created_at"]),
        "updated": isotime(server["updated_at"] or server["created_at"]),
        "addresses": addresses(server, extended=full),
        "accessIPv4": server["access_ip_v4"] or "",
        "accessIPv6": server["access_ip_v6"] or "",
        "links": links(req, "servers", server["uuid"]),
        "OS-DCF:diskConfig": "AUTO" if server["auto_disk_config"] else "MANUAL",
    }
    if full:
        body.update({
            "key_name": server["key_name"],
            "config_drive": server["config_drive"] or "",
            "OS-EXT-AZ:availability_zone": server["availability_zone"] or "",
            "OS-EXT-STS:task_state": server["task_state"],
            "OS-EXT-STS:vm_state": server["vm_state"],
            "OS-EXT-STS:power_state": server["power_state"],
            "OS-SRV-USG:launched_at": _usage_time(server["launched_at"]),
            "OS-SRV-USG:terminated_at": _usage_time(server["terminated_at"]),
            "os-extended-volumes:volumes_attached": _volumes(at["2.3"], server),
        })
    if status in _PROGRESS_STATUSES:
        body["progress"] = server["progress"] or 0
    if full and server["vifs"]:
        groups = security_group_names(server["vifs"])
        if groups:
            body["security_groups"] = [{"name": name} for name in groups]
    if full and _allowed(req, "os_compute_api:os-extended-server-attributes",
                         server["project_id"]):
        body["OS-EXT-SRV-ATTR:host"] = server["host"]
        body["OS-EXT-SRV-ATTR:instance_name"] = f"instance-{server['id']:08x}"
        body["OS-EXT-SRV-ATTR:hypervisor_hostname"] = server["node"]
        if at["2.3"]:
            body["OS-EXT-SRV-ATTR:reservation_id"] = server["reservation_id"]
            body["OS-EXT-SRV-ATTR:launch_index"] = server["launch_index"]
            body["OS-EXT-SRV-ATTR:kernel_id"] = ""
            body["OS-EXT-SRV-ATTR:ramdisk_id"] = ""
            body["OS-EXT-SRV-ATTR:hostname"] = server["hostname"]
            body["OS-EXT-SRV-ATTR:root_device_name"] = server["root_device_name"]
            body["OS-EXT-SRV-ATTR:user_data"] = None
    if full and at["2.90"]:
        # from 2.90 a server's owner chooses its hostname, so everyone sees it
        body["OS-EXT-SRV-ATTR:hostname"] = server["hostname"]
    if at["2.9"]:
        body["locked"] = bool(server["locked"])
    if at["2.73"]:
        body["locked_reason"] = (server.get("system_metadata") or {}).get("locked_reason")
    if full and at["2.16"] and _allowed(
            req, "os_compute_api:servers:show:host_status", server["project_id"]):
        body["host_status"] = _host_status(server)
    if at["2.19"]:
        body["description"] = server["display_description"]
    if at["2.26"]:
        body["tags"] = server["tags"]
    if at["2.63"]:
        # transcell refuses trusted certificates at create, so a server never has any
        body["trusted_image_certificates"] = None
    if (shown or updated) and at["2.71"]:
        body["server_groups"] = server_groups.groups_of(server["uuid"])
    fault = _fault(req, server)
    if fault and status in ("ERROR", "DELETED"):
        body["fault"] = fault
    return body


def _usage_time(value) -> str | None:
    return isotime_micro(value) if value else None


def _volumes(at_2_3: bool, server: dict) -> list[dict]:
    volumes = []
    for bdm in server["bdms"]:
        if bdm.get("volume_id"):
            entry = {"id": bdm["volume_id"]}
            if at_2_3:
                entry["delete_on_termination"] = bool(bdm["delete_on_termination"])
            volumes.append(entry)
    return volumes


def prepare_page(req: webob.Request, servers: list[dict]) -> None:
    """Read what a page's bodies share in one go rather than per server: the host
    status of every host the page's servers are on (2.16), and the image and flavor
    references servers have in common, each built once."""
    req.environ[_SHARED_KEY] = {}
    if not api_version(req).matches("2.16"):
        return
    shown = [s for s in servers if not s.get("unavailable")]
    if not shown:
        return
    from transcell.compute import service_state
    statuses = service_state.host_statuses({s["host"] for s in shown if s["host"]})
    for server in shown:
        server["_host_status"] = statuses.get(server["host"], "") if server["host"] else ""


def _host_status(server: dict) -> str:
    if "_host_status" in server:
        return server["_host_status"]
    if not server["host"]:
        return ""
    from transcell.compute import service_state
    return service_state.host_status(server["host"])
