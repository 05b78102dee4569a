"""What a server's guest tells about itself: /servers/{id}/os-server-password (the
password the guest posted, encrypted with the server's key) and
/servers/{id}/diagnostics (its counters, in the standard shape from 2.48)."""

from __future__ import annotations

import webob

from transcell.api.compute.app import api_version
from transcell.api.compute.power_actions import authorized, power_api
from transcell.wsgi.app import empty_response, json_response


def show_password(req: webob.Request, server_id: str) -> webob.Response:
    ctx, _ = authorized(req, server_id, "os_compute_api:os-server-password:show")
    return json_response({"password": power_api.get_password(ctx, server_id)})


def clear_password(req: webob.Request, server_id: str) -> webob.Response:
    ctx, _ = authorized(req, server_id, "os_compute_api:os-server-password:clear")
    power_api.clear_password(ctx, server_id)
    return empty_response(204)


def diagnostics(req: webob.Request, server_id: str) -> webob.Response:
    ctx, _ = authorized(req, server_id, "os_compute_api:os-server-diagnostics")
    data = power_api.diagnostics(ctx, server_id)
    if api_version(req).matches("2.48"):
        return json_response(data)
    return json_response(_legacy(data))


def _legacy(data: dict) -> dict:
    """Before 2.48 the body was the driver's own flat dict; this is the libvirt one's
    shape (cpuN_time, memory, <disk>_read, <nic>_rx, ...), which clients know best."""
    body: dict = {f"cpu{c['id']}_time": c["time"] for c in data.get("cpu_details", [])}
    body["memory"] = (data.get("memory_details") or {}).get("maximum")
    for i, d in enumerate(data.get("disk_details", [])):
        name = "vd" + chr(ord("a") + i)
        body.update({f"{name}_read": d["read_bytes"], f"{name}_read_req": d["read_requests"],
                     f"{name}_write": d["write_bytes"],
                     f"{name}_write_req": d["write_requests"],
                     f"{name}_errors": d["errors_count"]})
    for i, n in enumerate(data.get("nic_details", [])):
        name = f"vnet{i}"
        body.update({f"{name}_rx": n["rx_octets"], f"{name}_rx_drop": n["rx_drop"],
                     f"{name}_rx_errors": n["rx_errors"], f"{name}_rx_packets": n["rx_packets"],
                     f"{name}_tx": n["tx_octets"], f"{name}_tx_drop": n["tx_drop"],
                     f"{name}_tx_errors": n["tx_errors"],
                     f"{name}_tx_packets": n["tx_packets"]})
    return body

