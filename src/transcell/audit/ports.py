"""Ports against servers, both ways: a port bound to a server must be one the server
lists among its virtual interfaces, and every interface a server lists must exist.

The network service is read (and, by ``--fix``, written) through its own
service object on its database, as the other global services are here.
"""

from __future__ import annotations

from typing import Any

from transcell.audit import Problem, fix
from transcell.audit.state import Snapshot
from transcell.compute import vm_states as vm
from transcell.context import RequestContext


def check(snap: Snapshot, network: Any) -> list[Problem]:
    problems = []
    ports = network.list_ports(RequestContext.admin(), {})
    known = {port["id"] for port in ports}
    for port in ports:
        if not (port.get("device_owner") or "").startswith("compute:"):
            continue
        device = port.get("device_id") or ""
        problem = _port(snap, network, port["id"], device)
        if problem is not None:
            problems.append(problem)
        else:
            problems += _bindings(snap, network, port, device)
    problems += router_interfaces(network, ports)
    for uuid, port_ids in snap.vifs.items():
        visible = snap.visible(uuid)
        if not visible or visible[0][1].task_state == vm.DELETING or \
                visible[0][1].vm_state == vm.BUILDING:
            continue  # a delete drops the ports first, a failed build before its list
        for port_id in port_ids:
            if port_id not in known:
                problems.append(Problem("server-without-port",
                                        f"{uuid} lists port {port_id}, which the network "
                                        "service no longer has", uuid))
    return problems


def router_interfaces(network: Any, ports: list[dict[str, Any]]) -> list[Problem]:
    """Router interface ports whose router is gone (``interface-without-router``):
    only reported, since deleting a port may cut what a user still expects."""
    owners = ("network:router_interface", "network:router_interface_distributed",
              "network:ha_router_replicated_interface")
    interfaces = [port for port in ports if port.get("device_owner") in owners]
    if not interfaces:
        return []
    routers = {router["id"] for router in network.list_routers(RequestContext.admin(), {})}
    return [Problem("interface-without-router",
                    f"port {port['id']} is an interface of router {port.get('device_id')}, "
                    "which the network service no longer has", port["id"])
            for port in interfaces if port.get("device_id") not in routers]


def _port(snap: Snapshot, network: Any, port_id: str, device: str) -> Problem | None:
    visible = snap.visible(device)
    mapping = snap.mappings.get(device)
    if not visible:
        if mapping is not None and mapping.building:
            return None  # ports are made before the row is placed
        deleted = device in snap.deleted or (mapping is not None and mapping.queued_for_delete)
        if device in snap.rows:
            return None  # only hidden rows: a move's flip in progress; servers.py judges it
        return Problem("port-without-server",
                       f"port {port_id} is bound to {device or 'no device'}, which is no live "
                       "server" + (" (it was deleted)" if deleted else ""), port_id,
                       fix.release_ports(network, device) if deleted and device else None,
                       ("ports-of", device))
    row = visible[0][1]
    if row.vm_state == vm.BUILDING or row.task_state == vm.DELETING:
        return None  # a build lists its ports once made; a delete drops them first
    if port_id not in snap.vifs.get(device, []):
        return Problem("port-without-server",
                       f"port {port_id} is bound to {device}, which does not list it among "
                       "its interfaces", port_id)
    return None


def _bindings(snap: Snapshot, network: Any, port: dict, device: str) -> list[Problem]:
    """A settled server's port is bound to the server's host, and to nothing else.

    A move binds the port to its target host (inactive, then active) and
    drops the binding it no longer needs when it ends; while one is in
    flight both bindings are expected.
    """
    found = snap.mapped_row(device)
    if found is None or snap.moving(device):
        return []
    row = found[1]
    if row.vm_state == vm.BUILDING or row.task_state is not None or not row.host:
        return []
    problems = []
    active = port.get("binding:host_id")
    if active and active != row.host:
        problems.append(Problem(
            "port-bound-elsewhere", f"port {port['id']} of {device} is bound to {active}, "
            f"but the server runs on {row.host}", port["id"]))
    for binding in network.list_bindings(RequestContext.admin(), port["id"]):
        if binding["status"] != "ACTIVE" and binding["host"] != active:
            problems.append(Problem(
                "stale-port-binding", f"port {port['id']} of {device} keeps an inactive "
                f"binding to {binding['host']} that no move needs", port["id"]))
    return problems
