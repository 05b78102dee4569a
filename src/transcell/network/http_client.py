"""How compute hosts and the conductor reach the network service over its REST API.

A compute host in a cell must never call up to the API-level bus, so in the
distributed layout it talks to the Neutron-compatible network API with a
service user's Keystone token, as Nova's network client does. ``HTTPNetworkAPI``
answers exactly like ``transcell.network.rpcapi.NetworkAPI``: the same methods,
the same results (vif dicts, port and binding bodies) and the same transcell
exceptions, rebuilt from the ``type`` of Neutron's error envelope.

The service user (roles admin and service) sees every project's resources, so
what the RPC path checks against the caller's context — a network or port the
user cannot see is "not found", binding operations need an administrator — is
checked here against ``ctx`` before acting, with the same errors.

What plain Neutron cannot say is carried by the network API's ``transcell-vif``
extension (administrators and services only): whether compute created a port
(so releasing the server deletes it rather than detaching it), the port's
device tag and position, and a binding created INACTIVE whatever the port has.
Attaching a user's port uses Neutron's ``If-Match: revision_number=N`` so two
servers can never both take the same free port.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote

from transcell import exception, service_auth
from transcell.context import RequestContext
from transcell.network import exceptions as net_exc

LOG = logging.getLogger(__name__)

#: the transcell-vif port attributes (wire names of the network API)
CREATED_FOR_INSTANCE = "transcell:created_for_instance"
VIF_TAG = "transcell:vif_tag"
VIF_INDEX = "transcell:vif_index"

DEFAULT_NETWORK = "private"
DEFAULT_AVAILABILITY_ZONE = "nova"
REQUEST_KEYS = {"uuid", "port", "fixed_ip", "tag"}
ACTIVE = "ACTIVE"
#: how often attaching a port re-reads it after losing a race for its revision
ATTACH_ATTEMPTS = 5

_BY_STATUS: dict[int, type[exception.TranscellError]] = {
    400: exception.Invalid,
    401: exception.NotAuthenticated,
    403: exception.Forbidden,
    404: exception.NotFound,
    409: exception.Conflict,
}


class NetworkServiceUnavailable(exception.TranscellError):
    """The network API could not be reached at all (the RPC path's RPCTimeout)."""

    code = 503
    msg_fmt = "The network service at %(endpoint)s cannot be reached: %(reason)s"


def _error_class(error_type: str | None, status: int) -> type[exception.TranscellError]:
    """The transcell class the server raised, by the name Neutron's envelope carries."""
    for module in (net_exc, exception):
        found = getattr(module, error_type or "", None)
        if isinstance(found, type) and issubclass(found, exception.TranscellError):
            return found
    return _BY_STATUS.get(status, exception.TranscellError)


def error_from(status: int, body: Any, text: str = "") -> exception.TranscellError:
    """The exception a Neutron error response stands for, with the server's message."""
    envelope = body.get("NeutronError") if isinstance(body, dict) else None
    if isinstance(envelope, dict):
        error_type, message = envelope.get("type"), envelope.get("message") or ""
    else:
        error_type, message = None, text or f"HTTP {status}"
    cls = _error_class(error_type, status)
    err = cls.__new__(cls)
    exception.TranscellError.__init__(err, message)
    if cls is exception.TranscellError:
        err.code = status  # type: ignore[misc]
    return err


def _check_requests(requested: Any) -> list[dict[str, Any]]:
    if not isinstance(requested, list):
        raise exception.Invalid("Bad networks format: expected 'auto', 'none' or a list.")
    for item in requested:
        if (not isinstance(item, dict) or not set(item) <= REQUEST_KEYS
                or not (item.get("uuid") or item.get("port"))):
            raise exception.Invalid(
                f"Bad networks format: {item!r} needs a 'uuid' or a 'port' and may only "
                f"carry {sorted(REQUEST_KEYS)}.")
    return requested


def _query(filters: dict[str, Any]) -> list[tuple[str, str]] | None:
    """Neutron list filters: a list value is repeated keys (any of them matches).

    None when a filter has no values at all, which matches nothing.
    """
    params: list[tuple[str, str]] = []
    for key, value in filters.items():
        values = list(value) if isinstance(value, list | tuple | set) else [value]
        if not values:
            return None
        params.extend((key, str(item)) for item in values)
    return params


def vif(port: dict[str, Any], network_name: str) -> dict[str, Any]:
    """The compute side's view of a port, from the port body an administrator reads."""
    return {
        "id": port["id"],
        "address": port["mac_address"],
        "network_id": port["network_id"],
        "network_name": network_name,
        "fixed_ips": [{"ip_address": ip["ip_address"], "subnet_id": ip["subnet_id"],
                       "version": ipaddress.ip_address(ip["ip_address"]).version}
                      for ip in port["fixed_ips"]],
        "tag": port.get(VIF_TAG),
        "preexisting": not port.get(CREATED_FOR_INSTANCE, False),
        "host": port.get("binding:host_id") or None,
        "active": port["status"] == ACTIVE,
        "vif_type": port.get("binding:vif_type", "unbound"),
        "vnic_type": port.get("binding:vnic_type", "normal"),
        "devname": f"tap{port['id'][:11]}",
    }


class HTTPNetworkAPI:
    """``NetworkAPI`` over the network REST API with a keystoneauth session.

    ``session`` is a ``keystoneauth1.session.Session`` of a service user with
    the admin and service roles; ``endpoint`` the network API's root, e.g.
    ``http://127.0.0.1:8774/network``.
    """

    def __init__(self, session: Any, endpoint: str):
        self.session = session
        self.endpoint = endpoint.rstrip("/")

    # --- plumbing ------------------------------------------------------------
    def _call(self, ctx: RequestContext, method: str, path: str, body: Any = None,
              params: list[tuple[str, str]] | None = None,
              headers: dict[str, str] | None = None) -> Any:
        status, data, resp = service_auth.send_json(
            self.session, "network", self.endpoint, ctx, method, path, body=body,
            params=params, headers=headers, unavailable=NetworkServiceUnavailable)
        if status >= 400:
            raise error_from(status, data, resp.text)
        return data

    def _get_port(self, ctx: RequestContext, port_id: Any) -> dict[str, Any]:
        if not isinstance(port_id, str) or not port_id:
            raise exception.PortNotFound(port_id=port_id)
        return self._call(ctx, "GET", f"/v2.0/ports/{quote(port_id, safe='')}")["port"]

    def _list(self, ctx: RequestContext, collection: str, filters: dict[str, Any]
              ) -> list[dict[str, Any]]:
        params = _query(filters)
        if params is None:
            return []
        return self._call(ctx, "GET", f"/v2.0/{collection}", params=params)[collection]

    def _bindings_path(self, port_id: str, host: str | None = None) -> str:
        if not isinstance(port_id, str) or not port_id:
            raise exception.PortNotFound(port_id=port_id)
        path = f"/v2.0/ports/{quote(port_id, safe='')}/bindings"
        return path if host is None else f"{path}/{quote(host, safe='')}"

    # --- who may see what, as the network service decides it for ``ctx`` ------
    @staticmethod
    def _sees_network(ctx: RequestContext, net: dict[str, Any]) -> bool:
        return (ctx.is_admin or net["project_id"] == ctx.project_id or bool(net["shared"])
                or bool(net.get("router:external")))

    def _networks_owned(self, ctx: RequestContext) -> set[str]:
        if not ctx.project_id:
            return set()
        owned = self._list(ctx, "networks", {"project_id": ctx.project_id, "fields": "id"})
        return {net["id"] for net in owned}

    def _visible_port(self, ctx: RequestContext, port_id: str) -> dict[str, Any]:
        """The port, or PortNotFound when ``ctx`` could not see it over RPC either."""
        port = self._get_port(ctx, port_id)
        if ctx.is_admin or port["project_id"] == ctx.project_id:
            return port
        if port["network_id"] in self._networks_owned(ctx):
            return port
        raise exception.PortNotFound(port_id=port_id)

    @staticmethod
    def _require_admin(ctx: RequestContext, action: str) -> None:
        if not ctx.is_admin:
            raise net_exc.PolicyNotAuthorized(action=action)

    # --- NetworkAPI ------------------------------------------------------------
    def get_network(self, ctx: RequestContext, network_id: str) -> dict:
        if not isinstance(network_id, str) or not network_id:
            raise exception.NetworkNotFound(network_id=network_id)
        net = self._call(ctx, "GET", f"/v2.0/networks/{quote(network_id, safe='')}")["network"]
        if not self._sees_network(ctx, net):
            raise exception.NetworkNotFound(network_id=network_id)
        return net

    def security_group_call(self, ctx: RequestContext, method: str, **kwargs: Any) -> Any:
        """The security group calls of Nova's proxy, as the RPC client takes them."""
        return security_group_rest(self._call, ctx, method, **kwargs)

    def list_networks(self, ctx: RequestContext, **filters: Any) -> list[dict]:
        return self._list(ctx, "networks", filters)

    def list_ports(self, ctx: RequestContext, **filters: Any) -> list[dict]:
        ports = self._list(ctx, "ports", filters)
        if ctx.is_admin:
            return ports
        if any(port["project_id"] != ctx.project_id for port in ports):
            owned = self._networks_owned(ctx)
        else:
            owned = set()
        return [port for port in ports
                if port["project_id"] == ctx.project_id or port["network_id"] in owned]

    def list_security_groups(self, ctx: RequestContext, **filters: Any) -> list[dict]:
        """The security groups ``ctx`` sees (a server's create names them)."""
        return self._list(ctx, "security_groups", filters)

    def allocate_for_instance(self, ctx: RequestContext, instance_uuid: str, project_id: str,
                              requested_networks: Any, host: str) -> list[dict]:
        """Ports for a server, bound to ``host``; all or nothing, as over RPC."""
        if requested_networks in (None, "none"):
            return []
        if requested_networks == "auto":
            requested = [{"uuid": self._auto_network(ctx, project_id)}]
        else:
            requested = _check_requests(requested_networks)
        owner = f"compute:{DEFAULT_AVAILABILITY_ZONE}"
        done: list[tuple[str, str]] = []
        try:
            for index, request in enumerate(requested):
                if request.get("port"):
                    self._attach(ctx, request, instance_uuid, owner, host, index)
                    done.append(("attached", request["port"]))
                else:
                    port = self._create_for(ctx, request, instance_uuid, project_id, owner,
                                            host, index)
                    done.append(("created", port["id"]))
        except Exception:
            self._roll_back(ctx, done)
            raise
        return self._vifs(ctx, [port_id for _kind, port_id in done])

    def _auto_network(self, ctx: RequestContext, project_id: str) -> str:
        nets = sorted(self._list(ctx, "networks", {"name": DEFAULT_NETWORK}),
                      key=lambda net: net["id"])
        own = [net["id"] for net in nets if net["project_id"] == project_id]
        shared = [net["id"] for net in nets if net["shared"] and net["project_id"] != project_id]
        candidates = own or shared
        if len(candidates) == 1:
            return candidates[0]
        reason = (f"no network named '{DEFAULT_NETWORK}' is visible to it; create one or "
                  "request a network explicitly" if not candidates else
                  f"more than one network named '{DEFAULT_NETWORK}' is visible to it; "
                  "request one by id")
        raise net_exc.NetworkAutoAllocationFailed(project_id=project_id, reason=reason)

    def _create_for(self, ctx: RequestContext, request: dict[str, Any], instance_uuid: str,
                    project_id: str, owner: str, host: str | None, index: int
                    ) -> dict[str, Any]:
        self.get_network(ctx, request["uuid"])
        body: dict[str, Any] = {"network_id": request["uuid"], "project_id": project_id,
                                "device_id": instance_uuid, "device_owner": owner,
                                CREATED_FOR_INSTANCE: True, VIF_TAG: request.get("tag"),
                                VIF_INDEX: index}
        if request.get("fixed_ip"):
            body["fixed_ips"] = [{"ip_address": request["fixed_ip"]}]
        if host:
            body["binding:host_id"] = host
        return self._call(ctx, "POST", "/v2.0/ports", {"port": body})["port"]

    def _attach(self, ctx: RequestContext, request: dict[str, Any], instance_uuid: str,
                owner: str, host: str | None, index: int) -> None:
        """Take a user's free port for the server.

        The port is read, checked free, and updated only if nobody changed it
        meanwhile (If-Match on its revision), which the RPC path gets from
        checking under the port's row lock.
        """
        port = self._visible_port(ctx, request["port"])
        body: dict[str, Any] = {"device_id": instance_uuid, "device_owner": owner,
                                CREATED_FOR_INSTANCE: False, VIF_TAG: request.get("tag"),
                                VIF_INDEX: index}
        if host:
            body["binding:host_id"] = host
        path = f"/v2.0/ports/{quote(port['id'], safe='')}"
        for _attempt in range(ATTACH_ATTEMPTS):
            if port["device_id"]:
                raise net_exc.PortInUse(port_id=port["id"], net_id=port["network_id"],
                                        device_id=port["device_id"])
            revision = {"If-Match": f"revision_number={port['revision_number']}"}
            try:
                self._call(ctx, "PUT", path, {"port": body}, headers=revision)
                return
            except net_exc.RevisionNumberConstraintFailed:
                port = self._get_port(ctx, port["id"])
        raise exception.Conflict(f"Port {port['id']} kept changing while it was being "
                                 f"attached to instance {instance_uuid}.")

    def _detach(self, ctx: RequestContext, port_id: str) -> None:
        """Give a user's port back as it came: no device, no bindings."""
        self._call(ctx, "PUT", f"/v2.0/ports/{quote(port_id, safe='')}",
                   {"port": {"device_id": "", "device_owner": "", VIF_TAG: None,
                             VIF_INDEX: 0}})
        for binding in self._call(ctx, "GET", self._bindings_path(port_id))["bindings"]:
            self._call(ctx, "DELETE", self._bindings_path(port_id, binding["host"]))

    def _delete_port(self, ctx: RequestContext, port_id: str) -> None:
        self._call(ctx, "DELETE", f"/v2.0/ports/{quote(port_id, safe='')}")

    def _roll_back(self, ctx: RequestContext, done: list[tuple[str, str]]) -> None:
        for kind, port_id in reversed(done):
            try:
                if kind == "created":
                    self._delete_port(ctx, port_id)
                else:
                    self._detach(ctx, port_id)
            except Exception:
                LOG.exception("Rolling back port %s (%s) failed", port_id, kind)

    def _vifs(self, ctx: RequestContext, port_ids: list[str]) -> list[dict[str, Any]]:
        if not port_ids:
            return []
        ports = {port["id"]: port for port in self._list(ctx, "ports", {"id": port_ids})}
        missing = [port_id for port_id in port_ids if port_id not in ports]
        if missing:
            raise exception.PortNotFound(port_id=missing[0])
        names = self._network_names(ctx, (port["network_id"] for port in ports.values()))
        return [vif(ports[port_id], names.get(ports[port_id]["network_id"], ""))
                for port_id in port_ids]

    def _network_names(self, ctx: RequestContext, ids: Iterable[str]) -> dict[str, str]:
        wanted = sorted(set(ids))
        if not wanted:
            return {}
        nets = self._list(ctx, "networks", {"id": wanted, "fields": ["id", "name"]})
        return {net["id"]: net["name"] for net in nets}

    def deallocate_for_instance(self, ctx: RequestContext, instance_uuid: str,
                                vifs: list[dict] | None = None) -> None:
        """Delete the ports made for the server, detach the ones its user brought."""
        brought = {item["id"] for item in vifs or [] if item.get("preexisting")}
        made = {item["id"] for item in vifs or [] if not item.get("preexisting")}
        for port in self._list(ctx, "ports", {"device_id": instance_uuid}):
            port_id = port["id"]
            delete = port_id in made or (port_id not in brought
                                         and bool(port.get(CREATED_FOR_INSTANCE)))
            try:
                if delete:
                    self._delete_port(ctx, port_id)
                else:
                    self._detach(ctx, port_id)
            except exception.PortNotFound:
                LOG.info("Port %s of instance %s is already gone", port_id, instance_uuid)

    # --- port bindings, for moves ----------------------------------------------
    def list_bindings(self, ctx: RequestContext, port_id: str) -> list[dict]:
        self._require_admin(ctx, "get_port_binding")
        return self._call(ctx, "GET", self._bindings_path(port_id))["bindings"]

    def create_binding(self, ctx: RequestContext, port_id: str, host: str) -> dict:
        """An INACTIVE binding on ``host`` (transcell-vif's ``status``), as over RPC."""
        self._require_admin(ctx, "create_port_binding")
        body = {"binding": {"host": host, "status": "INACTIVE"}}
        return self._call(ctx, "POST", self._bindings_path(port_id), body)["binding"]

    def activate_binding(self, ctx: RequestContext, port_id: str, host: str) -> dict:
        self._require_admin(ctx, "activate")
        path = f"{self._bindings_path(port_id, host)}/activate"
        return self._call(ctx, "PUT", path)["binding"]

    def delete_binding(self, ctx: RequestContext, port_id: str, host: str) -> None:
        self._require_admin(ctx, "delete_port_binding")
        self._call(ctx, "DELETE", self._bindings_path(port_id, host))

    # --- a move's ports across cells (the transcell-port-moves extension) -------
    def check_ports_for_host(self, ctx: RequestContext, port_ids: list[str], host: str
                             ) -> list[dict]:
        self._require_admin(ctx, "check_ports_for_host")
        body = {"port_host_check": {"port_ids": port_ids, "host": host}}
        return self._call(ctx, "POST", "/v2.0/transcell/port-host-checks",
                          body)["port_host_check"]["ports"]

    def readdress_port(self, ctx: RequestContext, port_id: str, host: str) -> dict:
        self._require_admin(ctx, "readdress_port")
        path = f"/v2.0/ports/{quote(self._port_id(port_id), safe='')}/readdress"
        return self._call(ctx, "PUT", path, {"readdress": {"host": host}})["readdress"]

    def restore_port_addresses(self, ctx: RequestContext, port_id: str,
                               fixed_ips: list[dict]) -> dict:
        self._require_admin(ctx, "restore_port_addresses")
        path = f"/v2.0/ports/{quote(self._port_id(port_id), safe='')}/restore_addresses"
        body = {"restore_addresses": {"fixed_ips": fixed_ips}}
        return self._call(ctx, "PUT", path, body)["restore_addresses"]

    @staticmethod
    def _port_id(port_id: Any) -> str:
        if not isinstance(port_id, str) or not port_id:
            raise exception.PortNotFound(port_id=port_id)
        return port_id


def security_group_rest(call: Any, ctx: RequestContext, method: str, **kw: Any) -> Any:
    """``NetworkService`` method name and arguments -> its REST request."""
    def path(kind: str, item: str) -> str:
        return f"/v2.0/{kind}/{quote(item, safe='')}"
    if method == "get_security_group":
        return call(ctx, "GET", path("security-groups", kw["group_id"]))["security_group"]
    if method == "create_security_group":
        return call(ctx, "POST", "/v2.0/security-groups",
                    body={"security_group": kw["body"]})["security_group"]
    if method == "update_security_group":
        return call(ctx, "PUT", path("security-groups", kw["group_id"]),
                    body={"security_group": kw["body"]})["security_group"]
    if method == "delete_security_group":
        return call(ctx, "DELETE", path("security-groups", kw["group_id"]))
    if method == "create_security_group_rule":
        return call(ctx, "POST", "/v2.0/security-group-rules",
                    body={"security_group_rule": kw["body"]})["security_group_rule"]
    if method == "get_security_group_rule":
        return call(ctx, "GET", path("security-group-rules", kw["rule_id"]))[
            "security_group_rule"]
    if method == "delete_security_group_rule":
        return call(ctx, "DELETE", path("security-group-rules", kw["rule_id"]))
    if method == "update_port":
        return call(ctx, "PUT", path("ports", kw["port_id"]), body={"port": kw["body"]})["port"]
    raise ValueError(f"not a security group call: {method}")


def from_session(session: Any, endpoint: str | None = None, *,
                 interface: str | Iterable[str] = ("internal", "public"),
                 region_name: str | None = None) -> HTTPNetworkAPI:
    """What ``services.network`` is on a compute host or conductor that must not use
    the API-level bus: the network API at ``endpoint`` as ``session``'s user.

    Without ``endpoint`` the network service's URL comes from the catalog of the
    session's token, as Nova finds Neutron.
    """
    if endpoint is None:
        interfaces = [interface] if isinstance(interface, str) else list(interface)
        found = session.get_endpoint(service_type="network", region_name=region_name,
                                     interface=interfaces)
        if not found:
            raise NetworkServiceUnavailable(endpoint="(service catalog)",
                                            reason="it lists no network endpoint")
        endpoint = found
    return HTTPNetworkAPI(session, endpoint)
