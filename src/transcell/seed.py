"""A bulk loader for the fake driver at scale: cells, hosts and servers in one go.

``transcell dev seed --cells 10 --hosts 1000 --servers 100000 --state-dir DIR``
fills a state directory with what a cloud of that size would hold after its
hosts registered and its servers were built, for measuring lists, scheduling
and audits at scale. It is a *loader*, not the API path: building 100,000
servers through ``POST /servers`` means 100,000 scheduling passes, Placement
claims and build RPCs, hours on a small machine. Here rows go in through the
project's own models, in batches of a few thousand per transaction:

- cell mappings and migrated databases (``bootstrap.sync_databases``), one
  host mapping, nova-compute service and compute node per host, each host's
  usage counted as the resource tracker counts it;
- a Placement resource provider per compute node named and shaped as
  ``resource_tracker.register`` makes it (inventory of VCPU, MEMORY_MB and
  DISK_GB, the ``COMPUTE_NODE`` trait and the cell's hardware trait, the
  cell's aggregate), written into Placement's own tables;
- servers: the instance row, its extra (flavor copy), its image boot mapping,
  its instance mapping and request spec, and its allocation on its node's
  provider (consumer, project and user as Placement records them), ACTIVE on
  their host, owned by ``--projects`` projects whose quota is lifted.

What it leaves out: ports (seeded servers have no network, as with
``--nic none``) and disk files (the fake driver's hosts are never started).
``transcell audit`` on a seeded state directory is clean (a test holds it so).
"""

from __future__ import annotations

import datetime as dt
import uuid as uuidlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import create_engine, insert, select, update
from sqlalchemy.pool import NullPool

from transcell import bootstrap, quota
from transcell import cell as cells
from transcell.compute import service_state
from transcell.conf import CONF
from transcell.db import api_models as am
from transcell.db import cell_models as cm
from transcell.db.session import api_session, cell_session
from transcell.db.types import utcnow

#: Rows per INSERT batch (one transaction each).
BATCH = 5000
#: The image every seeded server was built from (the fake driver never reads it).
IMAGE = "6f1e1a7c-5eed-4c0d-9d1e-5eed00000001"
FLAVOR = {"flavorid": "seed.small", "name": "seed.small", "vcpus": 1, "memory_mb": 256,
          "root_gb": 1}


@dataclass
class Seeded:
    """What was loaded: counts, and each host's provider (for checks and benchmarks)."""

    cells: list[str] = field(default_factory=list)
    hosts: int = 0
    servers: int = 0
    projects: list[str] = field(default_factory=list)
    providers: dict[str, str] = field(default_factory=dict)  # host -> provider uuid


def _batches(rows: list[dict], size: int = BATCH) -> Iterator[list[dict]]:
    for start in range(0, len(rows), size):
        yield rows[start:start + size]


def _flavor() -> dict[str, Any]:
    """The seed flavor as a server keeps its copy (``flavor_to_dict``), created once."""
    from transcell.api.compute.flavors import flavor_to_dict
    with api_session() as s:
        row = s.scalar(select(am.Flavor).where(am.Flavor.flavorid == FLAVOR["flavorid"]))
        if row is None:
            row = am.Flavor(**FLAVOR, is_public=True)
            s.add(row)
            s.flush()
        return flavor_to_dict(row)


def seed(n_cells: int, n_hosts: int, n_servers: int, n_projects: int = 10,
         start: dt.datetime | None = None) -> Seeded:
    """Load an empty state directory (``CONF.state_dir``) with a cloud of this size.

    Hosts are spread evenly over cells (``cellN-hostM``, as the embedded cloud names
    them) and servers round-robin over hosts, so every page of a list mixes cells;
    creation times step by one second every three servers, so ties across cells
    are common, as in a cloud that builds many servers at once.
    """
    if n_cells < 1 or n_hosts < n_cells or n_servers < 0 or n_projects < 1:
        raise ValueError("need at least one cell, one host per cell and one project")
    CONF.set_override("cells", n_cells, group="embedded")
    CONF.set_override("hosts_per_cell", max(1, n_hosts // n_cells), group="embedded")
    bootstrap.sync_databases()
    flavor = _flavor()
    names = bootstrap.cell_names()
    by_name = {c.name: c for c in cells.list_cells()}
    seeded = Seeded(cells=names, projects=[f"seed-project-{p}" for p in range(n_projects)])
    for project in seeded.projects:
        quota.set_limits(project, {"instances": -1, "cores": -1, "ram": -1})

    hosts: list[tuple[str, str]] = []  # (cell name, host)
    for index in range(n_hosts):
        name = names[index % n_cells]
        hosts.append((name, f"{name}-host{index // n_cells + 1}"))
    per_host = {host: 0 for _, host in hosts}
    for index in range(n_servers):
        per_host[hosts[index % n_hosts][1]] += 1
    nodes = _load_hosts(by_name, hosts, per_host, flavor)
    seeded.hosts = len(hosts)
    seeded.providers = {host: node for host, node in nodes.items()}
    _load_providers(hosts, nodes, per_host, by_name, flavor)
    seeded.servers = _load_servers(by_name, hosts, nodes, n_servers, seeded.projects, flavor,
                                   start or utcnow() - dt.timedelta(seconds=n_servers))
    return seeded


def _load_hosts(by_name: dict[str, cells.Cell], hosts: list[tuple[str, str]],
                per_host: dict[str, int], flavor: dict) -> dict[str, str]:
    """Host mappings, services and compute nodes, usage included; host -> node uuid."""
    now = utcnow()
    with api_session() as s:
        s.execute(insert(am.HostMapping), [{"host": host, "cell_id": by_name[name].id}
                                           for name, host in hosts])
    nodes: dict[str, str] = {}
    for name, cell in by_name.items():
        mine = [host for cell_name, host in hosts if cell_name == name]
        if not mine:
            continue
        with cell_session(cell) as s:
            s.execute(insert(cm.Service), [
                {"uuid": str(uuidlib.uuid4()), "host": host,
                 "binary": service_state.COMPUTE, "topic": "compute", "last_seen_up": now}
                for host in mine])
            service_ids = dict(s.execute(select(cm.Service.host, cm.Service.id)
                                         .where(cm.Service.host.in_(mine))).all())
            rows = []
            for host in mine:
                nodes[host] = str(uuidlib.uuid4())
                n = per_host[host]
                rows.append({"uuid": nodes[host], "host": host, "hypervisor_hostname": host,
                             "host_ip": "127.0.0.1", "service_id": service_ids[host],
                             **_capacity(n, flavor),
                             "vcpus_used": n * flavor["vcpus"],
                             "memory_mb_used": n * flavor["memory_mb"],
                             "local_gb_used": n * flavor["root_gb"], "running_vms": n})
            s.execute(insert(cm.ComputeNode), rows)
    return nodes


def _capacity(servers: int, flavor: dict) -> dict[str, int]:
    """Room for the host's servers and as many again."""
    return {"vcpus": max(16, 2 * servers * flavor["vcpus"]),
            "memory_mb": max(32768, 2 * servers * flavor["memory_mb"]),
            "local_gb": max(500, 2 * servers * flavor["root_gb"])}


def _placement():
    """Placement's tables (its own models) on its database, after its app has synced the
    standard traits and resource classes into them."""
    from placement.db.sqlalchemy import models as pm

    from transcell.placement import client, embedded
    url = bootstrap.placement_database_url()
    if url is None:
        raise RuntimeError("the loader writes Placement's database: it must be this "
                           "deployment's ([placement] url names a remote one)")
    api = client.PlacementClient(client.DirectTransport(embedded.load_app(url)))
    api.list_providers()  # the first request syncs standard traits and classes
    return api, pm, create_engine(url, poolclass=NullPool)


def _load_providers(hosts: list[tuple[str, str]], nodes: dict[str, str],
                    per_host: dict[str, int], by_name: dict[str, cells.Cell],
                    flavor: dict) -> None:
    api, pm, engine = _placement()
    api.ensure_traits({t for name, _ in hosts for t in bootstrap.cell_traits(name)})
    now = utcnow()
    ratios = {"VCPU": CONF.compute.cpu_allocation_ratio,
              "MEMORY_MB": CONF.compute.ram_allocation_ratio,
              "DISK_GB": CONF.compute.disk_allocation_ratio}
    try:
        with engine.begin() as db:
            t = pm.BASE.metadata.tables
            classes = dict(db.execute(select(t["resource_classes"].c.name,
                                             t["resource_classes"].c.id)).all())
            if not all(rc in classes for rc in ratios):
                import os_resource_classes as orc
                classes.update({rc: orc.STANDARDS.index(rc) for rc in ratios})
            traits = dict(db.execute(select(t["traits"].c.name, t["traits"].c.id)).all())
            db.execute(insert(t["resource_providers"]), [
                {"uuid": nodes[host], "name": host, "generation": 1, "created_at": now}
                for _, host in hosts])
            providers = dict(db.execute(select(t["resource_providers"].c.uuid,
                                               t["resource_providers"].c.id)).all())
            db.execute(update(t["resource_providers"])
                       .where(t["resource_providers"].c.root_provider_id.is_(None))
                       .values(root_provider_id=t["resource_providers"].c.id))
            inventories, provider_traits, links = [], [], []
            for name, cell in by_name.items():
                if name in {n for n, _ in hosts}:
                    db.execute(insert(t["placement_aggregates"]).values(uuid=cell.uuid,
                                                                        created_at=now))
            aggregates = dict(db.execute(select(t["placement_aggregates"].c.uuid,
                                                t["placement_aggregates"].c.id)).all())
            for name, host in hosts:
                rp = providers[nodes[host]]
                capacity = _capacity(per_host[host], flavor)
                for rc, total in (("VCPU", capacity["vcpus"]),
                                  ("MEMORY_MB", capacity["memory_mb"]),
                                  ("DISK_GB", capacity["local_gb"])):
                    inventories.append({"resource_provider_id": rp,
                                        "resource_class_id": classes[rc], "total": total,
                                        "reserved": 0, "min_unit": 1, "max_unit": total,
                                        "step_size": 1, "allocation_ratio": ratios[rc],
                                        "created_at": now})
                for trait in ("COMPUTE_NODE", *bootstrap.cell_traits(name)):
                    provider_traits.append({"trait_id": traits[trait],
                                            "resource_provider_id": rp, "created_at": now})
                links.append({"resource_provider_id": rp,
                              "aggregate_id": aggregates[by_name[name].uuid],
                              "created_at": now})
            for table, rows in (("inventories", inventories),
                                ("resource_provider_traits", provider_traits),
                                ("resource_provider_aggregates", links)):
                for batch in _batches(rows):
                    db.execute(insert(t[table]), batch)
    finally:
        engine.dispose()


def _load_servers(by_name: dict[str, cells.Cell], hosts: list[tuple[str, str]],
                  nodes: dict[str, str], n_servers: int, projects: list[str], flavor: dict,
                  start: dt.datetime) -> int:
    """Servers in batches: cell rows, API rows, then Placement's allocations."""
    _, pm, engine = _placement()
    try:
        with engine.begin() as db:
            t = pm.BASE.metadata.tables
            now = utcnow()
            for project in projects:
                db.execute(insert(t["projects"]).values(external_id=project, created_at=now))
                db.execute(insert(t["users"]).values(external_id=_user(project),
                                                     created_at=now))
            project_ids = dict(db.execute(select(t["projects"].c.external_id,
                                                 t["projects"].c.id)).all())
            user_ids = dict(db.execute(select(t["users"].c.external_id, t["users"].c.id)).all())
            kind = db.execute(select(t["consumer_types"].c.id)
                              .where(t["consumer_types"].c.name == "INSTANCE")).scalar()
            if kind is None:
                kind = db.execute(insert(t["consumer_types"]).values(
                    name="INSTANCE", created_at=now)).inserted_primary_key[0]
            providers = dict(db.execute(select(t["resource_providers"].c.uuid,
                                               t["resource_providers"].c.id)).all())
            classes = dict(db.execute(select(t["resource_classes"].c.name,
                                             t["resource_classes"].c.id)).all())
        for first in range(0, n_servers, BATCH):
            servers = [_server(i, hosts[i % len(hosts)], len(hosts), projects, flavor, start)
                       for i in range(first, min(n_servers, first + BATCH))]
            _cell_rows(by_name, servers, flavor)
            _api_rows(by_name, servers, flavor)
            with engine.begin() as db:
                db.execute(insert(t["consumers"]), [
                    {"uuid": s["uuid"], "project_id": project_ids[s["project_id"]],
                     "user_id": user_ids[s["user_id"]], "generation": 1,
                     "consumer_type_id": kind, "created_at": now} for s in servers])
                db.execute(insert(t["allocations"]), [
                    {"resource_provider_id": providers[nodes[s["host"]]],
                     "consumer_id": s["uuid"], "resource_class_id": classes[rc],
                     "used": used, "created_at": now}
                    for s in servers for rc, used in (("VCPU", flavor["vcpus"]),
                                                      ("MEMORY_MB", flavor["memory_mb"]),
                                                      ("DISK_GB", flavor["root_gb"]))])
    finally:
        engine.dispose()
    return n_servers


def _user(project: str) -> str:
    return project.replace("project", "user")


def _server(index: int, placed: tuple[str, str], n_hosts: int, projects: list[str],
            flavor: dict, start: dt.datetime) -> dict[str, Any]:
    cell_name, host = placed
    # a project's servers come in runs of one per host, so each spans every cell
    project = projects[index // n_hosts % len(projects)]
    created = start + dt.timedelta(seconds=index // 3)
    name = f"seed-{index:06d}"
    return {"uuid": str(uuidlib.uuid4()), "cell": cell_name, "host": host, "node": host,
            "launched_on": host, "display_name": name, "hostname": name,
            "project_id": project, "user_id": _user(project), "image_ref": IMAGE,
            "instance_type_id": flavor["id"], "memory_mb": flavor["memory_mb"],
            "vcpus": flavor["vcpus"], "root_gb": flavor["root_gb"], "ephemeral_gb": 0,
            "availability_zone": cell_name, "vm_state": "active", "power_state": 1,
            "root_device_name": "/dev/vda", "launch_index": 0,
            "reservation_id": f"r-{index:08x}", "created_at": created, "updated_at": created,
            "launched_at": created}


def _cell_rows(by_name: dict[str, cells.Cell], servers: list[dict], flavor: dict) -> None:
    for name, cell in by_name.items():
        mine = [{k: v for k, v in s.items() if k != "cell"} for s in servers
                if s["cell"] == name]
        if not mine:
            continue
        with cell_session(cell) as s:
            s.execute(insert(cm.Instance), mine)
            s.execute(insert(cm.InstanceExtra), [
                {"instance_uuid": row["uuid"],
                 "flavor": {"cur": flavor, "old": None, "new": None},
                 "keypairs": [], "request_networks": [{"special": "none"}]} for row in mine])
            s.execute(insert(cm.BlockDeviceMapping), [
                {"uuid": str(uuidlib.uuid4()), "instance_uuid": row["uuid"],
                 "source_type": "image", "destination_type": "local",
                 "device_name": "/dev/vda", "boot_index": 0, "image_id": IMAGE,
                 "delete_on_termination": True} for row in mine])


def _api_rows(by_name: dict[str, cells.Cell], servers: list[dict], flavor: dict) -> None:
    with api_session() as s:
        s.execute(insert(am.InstanceMapping), [
            {"instance_uuid": row["uuid"], "cell_id": by_name[row["cell"]].id,
             "project_id": row["project_id"], "user_id": row["user_id"],
             "queued_for_delete": False, "created_at": row["created_at"]} for row in servers])
        s.execute(insert(am.RequestSpec), [
            {"instance_uuid": row["uuid"],
             "spec": {"instance_uuid": row["uuid"], "project_id": row["project_id"],
                      "user_id": row["user_id"], "flavor": flavor,
                      "image": {"id": IMAGE}, "availability_zone": None}}
            for row in servers])
