"""In-process bodies checked against Tempest's response schemas.

``tests/functional/cloud/test_tempest_schemas.py`` checks a running cloud up
to its maximum microversion. These checks cover what that cloud cannot show:
records only a long-lived cloud accumulates (live migrations in progress,
failed events, pages of migrations), and a server whose flavor has extra
specs, at the microversions that changed these shapes (2.75 to 2.91).
"""

from __future__ import annotations

import datetime as dt
import importlib

from compute_api_fixtures import DEMO
from tempest.lib.common import rest_client

from transcell.db import cell_models as cm
from transcell.db.session import cell_session
from transcell.db.types import utcnow


class _Resp(dict):
    def __init__(self, response):
        super().__init__({k.lower(): v for k, v in response.headers.items()})
        self.status = response.status_int


def check(version: str, module: str, name: str, response) -> dict:
    schema = getattr(importlib.import_module(
        f"tempest.lib.api_schema.response.compute.{version}.{module}"), name)
    body = response.json if response.body else ""
    rest_client.RestClient.validate_response(schema, _Resp(response), body)
    return body


def _migrations(cloud) -> None:
    now = utcnow()
    for n, (status, kind) in enumerate((("running", "live-migration"),
                                        ("confirmed", "resize"), ("finished", "migration"))):
        cell = cloud.cell1 if n % 2 else cloud.cell2
        cloud.add_migration(cell, cloud.add_instance(cell), status=status, migration_type=kind,
                            created_at=now - dt.timedelta(minutes=n), updated_at=now,
                            user_id="demo", project_id="demo-project")


def test_migration_bodies(cloud):
    _migrations(cloud)
    for version, module in (("2.23", "v2_23"), ("2.59", "v2_59"), ("2.66", "v2_59"),
                            ("2.80", "v2_80"), ("2.84", "v2_80"), ("2.91", "v2_80")):
        body = check(module, "migrations", "list_migrations",
                     cloud.get("/os-migrations", version=version))
        assert len(body["migrations"]) == 3
        assert "links" in body["migrations"][0]  # the running live migration


def test_instance_action_bodies(cloud):
    server = cloud.add_instance(cloud.cell2)
    start = utcnow() - dt.timedelta(hours=1)
    for n in range(3):
        cloud.add_action(cloud.cell2, server, "stop", f"req-{n}",
                         start + dt.timedelta(minutes=n), updated_at=utcnow(),
                         events=(("compute_stop_instance", "Error", "Traceback: x",
                                  "cell2-host1", "InstanceInvalidState"),
                                 ("conductor_noop", "Success", None, "cell2-host1", None)))
    path = f"/servers/{server}/os-instance-actions"
    for token in (None, DEMO):
        kwargs = {"token": token} if token else {}
        for version, module in (("2.58", "v2_58"), ("2.62", "v2_62"), ("2.66", "v2_62"),
                                ("2.84", "v2_84"), ("2.91", "v2_84")):
            listed = check(module, "servers", "list_instance_actions",
                           cloud.get(f"{path}?limit=2", version=version, **kwargs))
            assert listed["links"][0]["rel"] == "next"
            shown = check(module, "servers", "show_instance_action",
                          cloud.get(f"{path}/req-0", version=version, **kwargs))
            events = shown["instanceAction"]["events"]
            assert all(("hostId" in e) == (version != "2.58") for e in events)


def test_server_bodies_from_275(cloud):
    # as a built server has: placed, named for its guest
    server = cloud.add_instance(cloud.cell1, host="cell1-host1", node="cell1-host1",
                                hostname="ahead", launched_at=utcnow())
    with cell_session(cloud.cell1) as s:
        s.add(cm.InstanceExtra(instance_uuid=server, flavor={"cur": {
            "flavorid": "1", "name": "m1.tiny", "vcpus": 1, "memory_mb": 512, "root_gb": 1,
            "ephemeral_gb": 0, "swap": 0, "extra_specs": {"hw:cpu_policy": "shared"}}}))
    path = f"/servers/{server}"
    for token in (None, DEMO):
        kwargs = {"token": token} if token else {}
        for version, module in (("2.75", "v2_75"), ("2.79", "v2_79"), ("2.80", "v2_80"),
                                ("2.84", "v2_84"), ("2.89", "v2_89"), ("2.91", "v2_89")):
            check(module, "servers", "get_server", cloud.get(path, version=version, **kwargs))
            check(module, "servers", "list_servers_detail",
                  cloud.get("/servers/detail", version=version, **kwargs))
            check(module, "servers", "update_server", cloud.put(
                path, {"server": {"name": "ahead"}}, version=version, **kwargs))


def test_flavor_bodies_from_275(cloud):
    cloud.add_flavor("1", "m1.tiny", specs={"hw:cpu_policy": "shared"})
    for version in ("2.75", "2.84", "2.91"):
        check("v2_61", "flavors", "list_flavors_details",
              cloud.get("/flavors/detail", version=version))
        check("v2_61", "flavors", "create_update_get_flavor_details", cloud.put(
            "/flavors/1", {"flavor": {"description": "ahead"}}, version=version))
        check("v2_57", "limits", "get_limit", cloud.get("/limits", token=DEMO,
                                                        version=version))
