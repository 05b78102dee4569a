"""A two-cell cloud on SQLite files, rows written directly, and the compute API
in front of it, called in-process with webob.

Migrated empty databases are made once per session and copied for each test,
so every test starts from clean databases in milliseconds.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import uuid as uuidlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import webob

from transcell import exception
from transcell.api.compute import (
    availability_zones,
    flavor_extra_specs,
    flavors,
    hypervisors,
    instance_actions,
    keypairs,
    limits,
    migrations,
    server_tags,
    servers,
    services,
    versions,
)
from transcell.api.compute.app import ComputeApp, nova_fault
from transcell.cell import CELL0_UUID, Cell
from transcell.context import RequestContext
from transcell.db import api_models as am
from transcell.db import cell_models as cm
from transcell.db import migration
from transcell.db.session import api_session, cell_session, get_engine
from transcell.db.types import utcnow

ADMIN = "admin:admin-project:admin,manager,member,reader"
DEMO = "demo:demo-project:member,reader"
DEMO_READER = "reader:demo-project:reader"
ALT = "alt:alt-project:member,reader"

V = "/v2.1"

ROUTES = {
    "/": {"GET": versions.index},
    V: {"GET": versions.show},
    f"{V}/flavors": {"GET": flavors.index, "POST": flavors.create},
    f"{V}/flavors/detail": {"GET": flavors.detail},
    f"{V}/flavors/{{flavor_id}}": {"GET": flavors.show, "PUT": flavors.update,
                                   "DELETE": flavors.delete},
    f"{V}/flavors/{{flavor_id}}/os-extra_specs": {"GET": flavor_extra_specs.index,
                                                  "POST": flavor_extra_specs.create},
    f"{V}/flavors/{{flavor_id}}/os-extra_specs/{{key}}": {"GET": flavor_extra_specs.show,
                                                          "PUT": flavor_extra_specs.update,
                                                          "DELETE": flavor_extra_specs.delete},
    f"{V}/servers": {"GET": servers.index, "POST": servers.create},
    f"{V}/servers/detail": {"GET": servers.detail},
    f"{V}/servers/{{server_id}}": {"GET": servers.show, "PUT": servers.update,
                                   "DELETE": servers.delete},
    f"{V}/servers/{{server_id}}/tags": {"GET": server_tags.index, "PUT": server_tags.update_all,
                                        "DELETE": server_tags.delete_all},
    f"{V}/servers/{{server_id}}/tags/{{tag}}": {"GET": server_tags.show,
                                                "PUT": server_tags.update,
                                                "DELETE": server_tags.delete},
    f"{V}/servers/{{server_id}}/os-instance-actions": {"GET": instance_actions.index},
    f"{V}/servers/{{server_id}}/os-instance-actions/{{request_id}}": {
        "GET": instance_actions.show},
    f"{V}/os-keypairs": {"GET": keypairs.index, "POST": keypairs.create},
    f"{V}/os-keypairs/{{name}}": {"GET": keypairs.show, "DELETE": keypairs.delete},
    f"{V}/os-hypervisors": {"GET": hypervisors.index},
    f"{V}/os-hypervisors/detail": {"GET": hypervisors.detail},
    f"{V}/os-hypervisors/statistics": {"GET": hypervisors.statistics},
    f"{V}/os-hypervisors/{{hypervisor_id}}": {"GET": hypervisors.show},
    f"{V}/os-services": {"GET": services.index},
    f"{V}/os-services/{{service_id}}": {"PUT": services.update, "DELETE": services.delete},
    f"{V}/os-availability-zone": {"GET": availability_zones.index},
    f"{V}/os-availability-zone/detail": {"GET": availability_zones.detail},
    f"{V}/limits": {"GET": limits.index},
    f"{V}/os-migrations": {"GET": migrations.index},
}

DB_NAMES = {"api": "api", "cell0": "cell", "cell1": "cell", "cell2": "cell"}


def fake_authenticate(req: webob.Request) -> RequestContext:
    """Token "user:project:role1,role2"; anything else is unauthenticated."""
    parts = req.headers.get("X-Auth-Token", "").split(":")
    if len(parts) != 3 or not all(parts[:2]):
        raise exception.NotAuthenticated()
    user, project, roles = parts
    return RequestContext(user_id=user, project_id=project,
                          roles=[r for r in roles.split(",") if r])


def make_templates(directory: Path) -> Path:
    """Migrated, empty databases, copied for every test."""
    for name, schema in DB_NAMES.items():
        url = f"sqlite:///{directory / (name + '.sqlite')}"
        migration.sync(url, schema)
        get_engine(url).dispose()
    return directory


@dataclass
class Cloud:
    """What a test arranges rows in and calls the API through."""

    root: Path
    cells: dict[str, Cell] = field(default_factory=dict)
    app: ComputeApp | None = None

    @property
    def cell0(self) -> Cell:
        return self.cells["cell0"]

    @property
    def cell1(self) -> Cell:
        return self.cells["cell1"]

    @property
    def cell2(self) -> Cell:
        return self.cells["cell2"]

    # -- calling the API ----------------------------------------------------
    def call(self, method: str, path: str, token: str | None = ADMIN, body: Any = None,
             version: str | None = None, headers: dict[str, str] | None = None
             ) -> webob.Response:
        req = webob.Request.blank(path if path.startswith("/v2.1") or path == "/"
                                  else V + path, method=method)
        if token is not None:
            req.headers["X-Auth-Token"] = token
        if version is not None:
            req.headers["OpenStack-API-Version"] = f"compute {version}"
        if body is not None:
            req.body = json.dumps(body).encode()
            req.content_type = "application/json"
        for key, value in (headers or {}).items():
            req.headers[key] = value
        return req.get_response(self.app)

    def get(self, path: str, **kwargs) -> webob.Response:
        return self.call("GET", path, **kwargs)

    def post(self, path: str, body: Any, **kwargs) -> webob.Response:
        return self.call("POST", path, body=body, **kwargs)

    def put(self, path: str, body: Any = None, **kwargs) -> webob.Response:
        return self.call("PUT", path, body=body, **kwargs)

    def delete(self, path: str, **kwargs) -> webob.Response:
        return self.call("DELETE", path, **kwargs)

    # -- arranging rows -----------------------------------------------------
    def add_flavor(self, flavorid: str, name: str, vcpus: int = 1, memory_mb: int = 512,
                   root_gb: int = 1, is_public: bool = True, projects: tuple[str, ...] = (),
                   disabled: bool = False, specs: dict[str, str] | None = None) -> int:
        with api_session() as s:
            flavor = am.Flavor(flavorid=flavorid, name=name, vcpus=vcpus, memory_mb=memory_mb,
                               root_gb=root_gb, is_public=is_public, disabled=disabled)
            flavor.projects = [am.FlavorProject(project_id=p) for p in projects]
            flavor.extra_specs = [am.FlavorExtraSpec(key=k, value=v)
                                  for k, v in (specs or {}).items()]
            s.add(flavor)
            s.flush()
            return flavor.id

    def add_service(self, cell: Cell, host: str, binary: str = "nova-compute",
                    seen: dt.datetime | None | str = "now", **values) -> cm.Service:
        if binary == "nova-compute":
            self.map_host(cell, host)
        last_seen = utcnow() if seen == "now" else seen
        with cell_session(cell) as s:
            row = cm.Service(uuid=str(uuidlib.uuid4()), host=host, binary=binary,
                             topic=binary.removeprefix("nova-"), last_seen_up=last_seen,
                             **values)
            s.add(row)
            s.flush()
            return row

    def map_host(self, cell: Cell, host: str) -> None:
        with api_session() as s:
            if s.query(am.HostMapping).filter_by(host=host).first() is None:
                s.add(am.HostMapping(host=host, cell_id=cell.id))

    def add_node(self, cell: Cell, host: str, **values) -> cm.ComputeNode:
        defaults = {"vcpus": 16, "memory_mb": 32768, "local_gb": 500,
                    "hypervisor_hostname": host, "host_ip": "192.0.2.10"}
        defaults.update(values)
        with cell_session(cell) as s:
            row = cm.ComputeNode(uuid=str(uuidlib.uuid4()), host=host, **defaults)
            s.add(row)
            s.flush()
            return row

    def add_compute(self, cell: Cell, host: str, **node) -> tuple[cm.Service, cm.ComputeNode]:
        service = self.add_service(cell, host)
        return service, self.add_node(cell, host, service_id=service.id, **node)

    def add_instance(self, cell: Cell, project: str = "demo-project", user: str = "demo",
                     uuid: str | None = None, mapped: bool = True, hidden: bool = False,
                     deleted: bool = False, **values) -> str:
        uuid = uuid or str(uuidlib.uuid4())
        columns = {"vcpus": 1, "memory_mb": 512, "vm_state": "active",
                   "display_name": f"server-{uuid[:8]}"}
        columns.update(values)
        with cell_session(cell) as s:
            row = cm.Instance(uuid=uuid, project_id=project, user_id=user, hidden=hidden,
                              **columns)
            s.add(row)
            s.flush()
            if deleted:
                row.deleted = row.id
                row.deleted_at = utcnow()
        if mapped:
            with api_session() as s:
                mapping = s.query(am.InstanceMapping).filter_by(instance_uuid=uuid).first()
                if mapping is None:
                    s.add(am.InstanceMapping(instance_uuid=uuid, cell_id=cell.id,
                                             project_id=project, user_id=user))
                else:
                    mapping.cell_id = cell.id
        return uuid

    def add_migration(self, cell: Cell, instance_uuid: str, uuid: str | None = None,
                      **values) -> cm.Migration:
        columns = {"status": "finished", "migration_type": "resize",
                   "source_compute": "cell1-host1", "dest_compute": "cell2-host1",
                   "source_node": "cell1-host1", "dest_node": "cell2-host1",
                   "dest_host": "192.0.2.20", "old_instance_type_id": 1,
                   "new_instance_type_id": 2}
        columns.update(values)
        with cell_session(cell) as s:
            row = cm.Migration(uuid=uuid or str(uuidlib.uuid4()), instance_uuid=instance_uuid,
                               **columns)
            s.add(row)
            s.flush()
            return row

    def add_action(self, cell: Cell, instance_uuid: str, action: str, request_id: str,
                   created_at: dt.datetime, events: tuple[tuple[Any, ...], ...] = (),
                   user: str = "demo", project: str | None = "demo-project",
                   updated_at: dt.datetime | None = None) -> None:
        """``events`` = (name, result, traceback[, host[, details]]) tuples, oldest first."""
        with cell_session(cell) as s:
            row = cm.InstanceAction(action=action, instance_uuid=instance_uuid,
                                    request_id=request_id, user_id=user, project_id=project,
                                    start_time=created_at, created_at=created_at,
                                    updated_at=updated_at)
            s.add(row)
            s.flush()
            for offset, (name, result, trace, *rest) in enumerate(events):
                when = created_at + dt.timedelta(seconds=offset + 1)
                host = rest[0] if rest else None
                details = rest[1] if len(rest) > 1 else None
                s.add(cm.InstanceActionEvent(
                    action_id=row.id, event=name, start_time=when, created_at=when,
                    finish_time=when if result else None, result=result, traceback=trace,
                    host=host, details=details))


def build_cloud(root: Path, templates: Path) -> Cloud:
    cloud = Cloud(root)
    for name in DB_NAMES:
        shutil.copy(templates / f"{name}.sqlite", root / f"{name}.sqlite")
    with api_session() as s:
        for name in ("cell0", "cell1", "cell2"):
            s.add(am.CellMapping(uuid=CELL0_UUID if name == "cell0" else str(uuidlib.uuid4()),
                                 name=name,
                                 database_connection=f"sqlite:///{root / (name + '.sqlite')}",
                                 transport_url=f"inproc://{name}"))
    with api_session() as s:
        for row in s.query(am.CellMapping).all():
            cloud.cells[row.name] = Cell.of(row)
    cloud.app = ComputeApp(ROUTES, fake_authenticate, nova_fault)
    return cloud


def dispose(cloud: Cloud) -> None:
    get_engine(f"sqlite:///{cloud.root / 'api.sqlite'}").dispose()
    for cell in cloud.cells.values():
        get_engine(cell.database_connection).dispose()
