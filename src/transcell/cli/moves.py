"""``transcell move plan``: the move plan API, from the operator's shell.

The plan needs the scheduler and the compute hosts, which only the running
services reach, so this command is a client of the admin API (with the
``transcell-admin`` credentials of ``STATE/clouds.yaml``) rather than a
reader of the databases like ``instance locate``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

MIB = 1024 * 1024


def add_parser(sub: Any, common: Any) -> None:
    move = sub.add_parser("move", help="Plan server moves without changing anything")
    common(move)
    move_sub = move.add_subparsers(dest="move_command", required=True)
    plan = move_sub.add_parser("plan", help="Where a server (or each server of a cell) would "
                                            "go, what would move, how long, what blocks it")
    common(plan)
    plan.add_argument("server", nargs="?", help="Server UUID (or give --cell)")
    target = plan.add_mutually_exclusive_group()
    target.add_argument("--flavor", help="Plan a resize to this flavor")
    target.add_argument("--host", help="Plan a cold migration to this host")
    plan.add_argument("--cell", help="Plan a cold migration of every server of this cell")
    plan.add_argument("--same-cell", action="store_true",
                      help="Keep the move inside the server's cell")
    plan.add_argument("--readdress", action=argparse.BooleanOptionalAction, default=None,
                      help="Re-address ports whose segment the target cell lacks (default: "
                           "[network] readdress_on_move)")
    plan.add_argument("--cloud", default="transcell-admin",
                      help="Cloud of STATE/clouds.yaml to use (an admin)")
    plan.add_argument("--json", action="store_true")


def _session(state_dir: str, cloud: str):
    import openstack.config
    path = os.path.join(state_dir, "clouds.yaml")
    if not os.path.exists(path):
        raise SystemExit(f"{path} does not exist: is the cloud up (transcell up)?")
    config = openstack.config.OpenStackConfig(config_files=[path])
    return config.get_one(cloud=cloud).get_session()


def cmd_plan(args: argparse.Namespace) -> int:
    from transcell.conf import CONF
    if bool(args.server) == bool(args.cell):
        print("give a server or --cell", file=sys.stderr)
        return 2
    body: dict[str, Any] = {"allow_cross_cell": not args.same_cell}
    if args.cell:
        body["cell"] = args.cell
    else:
        body["server_id"] = args.server
    if args.flavor:
        body["flavorRef"] = args.flavor
    if args.host:
        body["host"] = args.host
    if args.readdress is not None:
        body["readdress_ports"] = args.readdress
    session = _session(CONF.state_dir, args.cloud)
    resp = session.post("/os-transcell-move-plans", json={"move_plan": body},
                        endpoint_filter={"service_type": "compute"}, raise_exc=False)
    if resp.status_code != 200:
        print(f"{resp.status_code}: {resp.text}", file=sys.stderr)
        return 1
    plans = resp.json()["move_plans"]
    if args.json:
        print(json.dumps(plans, indent=2))
    else:
        for plan in plans:
            print(render(plan))
    return 0 if all(p["movable"] for p in plans) else 3


def render(plan: dict[str, Any]) -> str:
    lines = [f"{plan['name']} ({plan['server_id']}): {plan['kind']} from "
             f"{plan['source']['cell']}/{plan['source']['host']}"]
    target = plan.get("target")
    if target:
        lines[0] += f" to {target['cell']}/{target['host']}"
    disk = plan.get("disk") or {}
    if disk:
        lines.append(f"  disk: {disk.get('allocated_bytes', 0) / MIB:.1f} MiB to send")
    for volume in plan.get("volumes") or []:
        where = volume.get("from_backend")
        if volume["action"] == "migrate":
            where = f"{where} -> {volume.get('to_backend')}, " \
                    f"{(volume.get('bytes') or 0) / MIB:.1f} MiB"
        lines.append(f"  volume {volume['volume_id']}: {volume['action']} ({where})")
    for port in plan.get("ports") or []:
        addresses = ", ".join(ip.get("ip_address", "?") for ip in port.get("fixed_ips") or [])
        lines.append(f"  port {port['port_id']}: {port['action']} ({addresses})")
    predicted = plan.get("predicted")
    if predicted:
        lines.append(f"  {plan['bytes_to_move'] / MIB:.1f} MiB to move; about "
                     f"{predicted['move_seconds']} s, {predicted['downtime_seconds']} s down "
                     f"({predicted['throughput_mib_s']} MiB/s, {predicted['basis']})")
    for reason in plan.get("blockers") or []:
        lines.append(f"  BLOCKED: {reason}")
    return "\n".join(lines)
