"""Disk files on hosts: each belongs to a live server placed on that host, or to a
host a move in flight (or one that failed and waits for an operator) still uses."""

from __future__ import annotations

import os

from transcell import conf
from transcell.audit import Problem, fix
from transcell.audit.state import Snapshot, describe, resources
from transcell.move import saga as sagas


def move_hosts(snap: Snapshot, uuid: str) -> set[str]:
    """Hosts where the server's unfinished moves legitimately keep its disks."""
    hosts = set()
    for saga in snap.moves_of(uuid, *sagas.IN_FLIGHT, sagas.FAILED):
        for key in ("source_host", "dest_host"):
            if resources(saga).get(key):
                hosts.add(resources(saga)[key])
    return hosts


def owned(snap: Snapshot, uuid: str, host: str) -> bool:
    if any(row.host == host for _, row in snap.visible(uuid)):
        return True
    return host in move_hosts(snap, uuid) or uuid in snap.legacy_servers


def check(snap: Snapshot) -> list[Problem]:
    problems = []
    root = conf.state_path("hosts")
    if not os.path.isdir(root):
        return problems
    for host in sorted(os.listdir(root)):
        instances = os.path.join(root, host, "instances")
        if not os.path.isdir(instances):
            continue
        for uuid in sorted(os.listdir(instances)):
            if uuid.startswith(".") or owned(snap, uuid, host):
                continue
            ended = snap.latest_ended(uuid)
            why = (f"; {describe(ended)} used this host"
                   if ended and host in (resources(ended).get("source_host"),
                                         resources(ended).get("dest_host")) else "")
            problems.append(Problem("orphan-disk",
                                    f"host {host} keeps disks of {uuid}, which no live row "
                                    f"or move in flight places there{why}", uuid,
                                    fix.delete_disk(instances, host, uuid),
                                    ("disk", host, uuid)))
    return problems
