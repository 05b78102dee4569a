"""Disk files on hosts: each belongs to a live server placed on that host, or to a
host a move in flight (or one that failed and waits for an operator) still uses."""

from __future__ import annotations

import os

from transcell import conf
from transcell.audit import Problem, fix
from transcell.audit.state import Snapshot, describe, resources
from transcell.compute.virt import disk_chain
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
            if uuid.startswith("."):
                continue
            if owned(snap, uuid, host):
                problems.extend(_stale_layers(snap, instances, host, uuid))
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


def _stale_layers(snap: Snapshot, instances: str, host: str, uuid: str) -> list[Problem]:
    """Layers a pre-copy froze under a disk outlive only a move still under way (the
    source keeps them until it is confirmed or reverted); after that they are a chain
    a host had to fold back and did not, and every read of the disk goes through it."""
    root = os.path.join(instances, uuid, "disk")
    layers = disk_chain.frozen_layers(root) if os.path.isdir(os.path.dirname(root)) else []
    if not layers or snap.moves_of(uuid, *sagas.IN_FLIGHT):
        return []
    return [Problem("precopy-layers",
                    f"host {host} keeps {len(layers)} layer(s) a pre-copy froze under the "
                    f"root disk of {uuid}, and no move of it is under way", uuid,
                    fix.fold_layers(root, host, uuid), ("layers", host, uuid))]
