"""What the compute side asks of the network: ports for a server, and their release.

Every argument and result is plain JSON, as these calls travel over RPC. A
server's ports are found by ``device_id`` (the instance uuid), so the network
side needs no knowledge of cells: a server moved to another cell keeps its ports.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from typing import Any

from sqlalchemy import select

from transcell import exception
from transcell.context import RequestContext
from transcell.db.session import session_for
from transcell.network import exceptions as exc
from transcell.network import scope, views
from transcell.network.models import Network, Port

LOG = logging.getLogger(__name__)

DEFAULT_NETWORK = "private"
DEFAULT_SUBNET = "private-subnet"
DEFAULT_CIDR = "10.0.0.0/22"
DEFAULT_GATEWAY = "10.0.0.1"
REQUEST_KEYS = {"uuid", "port", "fixed_ip", "tag"}

_default_network_lock = threading.Lock()


def elevated(ctx: RequestContext) -> RequestContext:
    """The same caller with admin rights, for the steps Nova also runs as admin."""
    return dataclasses.replace(ctx, roles=sorted(set(ctx.roles) | {"admin"}))


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


class InstanceNetworking:
    db_url: str
    ensure_routed_network: Any

    def allocate_for_instance(self, ctx: RequestContext, instance_uuid: str,
                              project_id: str, requested_networks: Any,
                              host: str | None, availability_zone: str | None = None
                              ) -> list[dict[str, Any]]:
        """Give a server its ports, bound to ``host``; all or nothing.

        ``requested_networks`` is "none", "auto" (the network named "private"
        the project can see) or a list of {"uuid"} / {"port"} requests, each
        optionally with "fixed_ip" and "tag". Ports created here are deleted,
        and ports the user brought detached, if any step fails.
        """
        if requested_networks in (None, "none"):
            return []
        if requested_networks == "auto":
            requested = [{"uuid": self._auto_network(project_id)}]
        else:
            requested = _check_requests(requested_networks)
        owner = f"compute:{availability_zone or 'nova'}"
        admin = elevated(ctx)
        done: list[tuple[str, str]] = []
        try:
            for index, request in enumerate(requested):
                if request.get("port"):
                    self._attach(ctx, admin, request, instance_uuid, owner, host, index)
                    done.append(("attached", request["port"]))
                else:
                    port = self._create_for(ctx, admin, request, instance_uuid, project_id,
                                            owner, host, index)
                    done.append(("created", port["id"]))
        except Exception:
            self._roll_back(admin, done)
            raise
        return self._vifs(admin, [port_id for _kind, port_id in done])

    def _auto_network(self, project_id: str) -> str:
        query = select(Network).where(Network.name == DEFAULT_NETWORK).order_by(Network.id)
        with session_for(self.db_url) as session:
            nets = list(session.scalars(query))
        own = [net.id for net in nets if net.project_id == project_id]
        shared = [net.id for net in nets if net.shared and net.project_id != project_id]
        candidates = own or shared
        if len(candidates) == 1:
            return candidates[0]
        reason = (f"no network named '{DEFAULT_NETWORK}' is visible to it; create one or "
                  "request a network explicitly" if not candidates else
                  f"more than one network named '{DEFAULT_NETWORK}' is visible to it; "
                  "request one by id")
        raise exc.NetworkAutoAllocationFailed(project_id=project_id, reason=reason)

    def _create_for(self, ctx: RequestContext, admin: RequestContext,
                    request: dict[str, Any], instance_uuid: str, project_id: str,
                    owner: str, host: str | None, index: int) -> dict[str, Any]:
        self.get_network(ctx, request["uuid"])
        body: dict[str, Any] = {"network_id": request["uuid"], "project_id": project_id,
                                "device_id": instance_uuid, "device_owner": owner}
        if request.get("fixed_ip"):
            body["fixed_ips"] = [{"ip_address": request["fixed_ip"]}]
        if host:
            body["binding:host_id"] = host
        return self._create_port(admin, body, created_for_instance=True,
                                 vif_tag=request.get("tag"), vif_index=index)

    def _attach(self, ctx: RequestContext, admin: RequestContext, request: dict[str, Any],
                instance_uuid: str, owner: str, host: str | None, index: int) -> None:
        self.get_port(ctx, request["port"])
        body: dict[str, Any] = {"device_id": instance_uuid, "device_owner": owner}
        if host:
            body["binding:host_id"] = host
        self._update_port(admin, request["port"], body, require_unattached=True,
                          created_for_instance=False, vif_tag=request.get("tag"),
                          vif_index=index)

    def _detach(self, admin: RequestContext, port_id: str) -> None:
        """Give a user's port back as it came: no device, no bindings."""
        self._update_port(admin, port_id, {"device_id": "", "device_owner": ""},
                          vif_tag=None, vif_index=0)
        for binding in self.list_bindings(admin, port_id):
            self.delete_binding(admin, port_id, binding["host"])

    def _roll_back(self, admin: RequestContext, done: list[tuple[str, str]]) -> None:
        for kind, port_id in reversed(done):
            try:
                if kind == "created":
                    self.delete_port(admin, port_id)
                else:
                    self._detach(admin, port_id)
            except Exception:
                LOG.exception("Rolling back port %s (%s) failed", port_id, kind)

    def _vifs(self, ctx: RequestContext, port_ids: list[str]) -> list[dict[str, Any]]:
        with session_for(self.db_url) as session:
            rows = [scope.load_port(session, ctx, port_id) for port_id in port_ids]
            names = self._network_names(session, rows)
            return [views.vif(row, names.get(row.network_id, "")) for row in rows]

    @staticmethod
    def _network_names(session, rows: list[Port]) -> dict[str, str]:
        ids = {row.network_id for row in rows}
        if not ids:
            return {}
        query = select(Network.id, Network.name).where(Network.id.in_(ids))
        return {net_id: name for net_id, name in session.execute(query)}

    def deallocate_for_instance(self, ctx: RequestContext, instance_uuid: str,
                                vifs: list[dict[str, Any]] | None = None
                                ) -> dict[str, list[str]]:
        """Release a server's ports: delete those made for it, detach the user's own.

        ``vifs`` (as returned by allocate) overrides what the ports remember
        about who created them.
        """
        admin = elevated(ctx)
        brought = {vif["id"] for vif in vifs or [] if vif.get("preexisting")}
        made = {vif["id"] for vif in vifs or [] if not vif.get("preexisting")}
        with session_for(self.db_url) as session:
            rows = list(session.scalars(select(Port).where(Port.device_id == instance_uuid)))
            owned = {row.id: row.id in made or (row.id not in brought
                                                 and row.created_for_instance)
                     for row in rows}
        result: dict[str, list[str]] = {"deleted": [], "detached": []}
        for port_id, delete in owned.items():
            try:
                if delete:
                    self.delete_port(admin, port_id)
                    result["deleted"].append(port_id)
                else:
                    self._detach(admin, port_id)
                    result["detached"].append(port_id)
            except exception.PortNotFound:
                LOG.info("Port %s of instance %s is already gone", port_id, instance_uuid)
        return result

    def get_instance_nw_info(self, ctx: RequestContext, instance_uuid: str
                             ) -> list[dict[str, Any]]:
        query = (select(Port).where(Port.device_id == instance_uuid)
                 .order_by(Port.vif_index, Port.created_at, Port.id))
        clause = scope.port_clause(ctx)
        if clause is not None:
            query = query.where(clause)
        with session_for(self.db_url) as session:
            rows = list(session.scalars(query))
            names = self._network_names(session, rows)
            return [views.vif(row, names.get(row.network_id, "")) for row in rows]

    def ensure_default_network(self, ctx: RequestContext) -> dict[str, Any]:
        """The shared "private" network and its IPv4 subnet, created once; and
        the shared "routed" network, a segment and subnet per cell (``defaults``).

        Addresses are bookkeeping only: transcell never carries traffic on them.
        """
        admin = elevated(ctx)
        with _default_network_lock:
            found = self.list_networks(admin, {"name": DEFAULT_NETWORK, "shared": True})
            net = found[0] if found else self.create_network(admin, {
                "name": DEFAULT_NETWORK, "shared": True,
                "project_id": ctx.project_id or "service"})
            subnets = self.list_subnets(admin, {"network_id": net["id"],
                                                "name": DEFAULT_SUBNET})
            if not subnets:
                self.create_subnet(admin, {
                    "network_id": net["id"], "name": DEFAULT_SUBNET, "ip_version": 4,
                    "cidr": DEFAULT_CIDR, "gateway_ip": DEFAULT_GATEWAY,
                    "project_id": net["project_id"]})
            self.ensure_routed_network(admin, net["project_id"])
            return self.get_network(admin, net["id"])

    def audit_ports(self, ctx: RequestContext) -> list[dict[str, Any]]:
        """Every server port with where it is bound, for finding ports whose server is gone."""
        scope.require_admin(ctx, "audit_ports")
        query = (select(Port).where(Port.device_owner.like("compute:%"))
                 .order_by(Port.device_id, Port.vif_index, Port.id))
        with session_for(self.db_url) as session:
            report = []
            for row in session.scalars(query):
                active = row.active_binding()
                report.append({
                    "id": row.id,
                    "device_id": row.device_id,
                    "host": active.host if active else None,
                    "inactive_hosts": [b.host for b in row.bindings if b is not active],
                    "network_id": row.network_id,
                    "project_id": row.project_id,
                    "status": row.status,
                })
            return report
