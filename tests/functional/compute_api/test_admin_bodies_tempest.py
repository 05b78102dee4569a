"""Quota, flavor access, hypervisor, usage, os-hosts and image proxy bodies checked
against Tempest's response schemas at the microversions that changed them."""

from __future__ import annotations

import datetime as dt
import importlib

import compute_api_fixtures as fx
import pytest
from compute_api_fixtures import DEMO
from tempest.lib.common import rest_client

from transcell.api.compute.app import ComputeApp, nova_fault
from transcell.api.compute.routes import ROUTES
from transcell.context import RequestContext
from transcell.image.client import ImageClient
from transcell.image.service import ImageService
from transcell.image.store import ChunkStore
from transcell.registry import services


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


@pytest.fixture
def scloud(cloud):
    cloud.app = ComputeApp(ROUTES, fx.fake_authenticate, nova_fault)
    return cloud


@pytest.mark.parametrize("version, module", [("2.1", "v2_1"), ("2.36", "v2_36"),
                                             ("2.57", "v2_57")])
def test_quota_set_bodies(scloud, version, module):
    path = "/os-quota-sets/demo-project"
    check(module, "quotas", "get_quota_set", scloud.get(path, token=DEMO, version=version))
    check(module, "quotas", "get_quota_set",
          scloud.get(path + "/defaults", token=DEMO, version=version))
    check(module, "quotas", "get_quota_set_details",
          scloud.get(path + "/detail", token=DEMO, version=version))
    check(module, "quotas", "update_quota_set",
          scloud.put(path, {"quota_set": {"instances": 5, "force": True}}, version=version))
    check(module, "quotas", "delete_quota", scloud.delete(path, version=version))


@pytest.mark.parametrize("version, module", [("2.1", "v2_1"), ("2.50", "v2_50"),
                                             ("2.57", "v2_57")])
def test_quota_class_bodies(scloud, version, module):
    path = "/os-quota-class-sets/default"
    check(module, "quota_classes", "get_quota_class_set", scloud.get(path, version=version))
    check(module, "quota_classes", "update_quota_class_set",
          scloud.put(path, {"quota_class_set": {"cores": 30}}, version=version))


def test_flavor_access_hypervisor_usage_and_host_bodies(scloud):
    scloud.add_flavor("priv", "private", is_public=False)
    check("v2_1", "flavors_access", "add_remove_list_flavor_access",
          scloud.post("/flavors/priv/action", {"addTenantAccess": {"tenant": "demo-project"}}))
    check("v2_1", "flavors_access", "add_remove_list_flavor_access",
          scloud.get("/flavors/priv/os-flavor-access"))

    _, node = scloud.add_compute(scloud.cell1, "cell1-host1")
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    scloud.add_instance(scloud.cell1, host="cell1-host1", node="cell1-host1",
                        launched_at=now - dt.timedelta(hours=1), root_gb=1)
    check("v2_1", "hypervisors", "get_hypervisor_uptime",
          scloud.get(f"/os-hypervisors/{node.id}/uptime"))
    check("v2_53", "hypervisors", "get_hypervisor_uptime",
          scloud.get(f"/os-hypervisors/{node.uuid}/uptime", version="2.53"))
    check("v2_1", "hypervisors", "list_search_hypervisors",
          scloud.get("/os-hypervisors/cell1/search"))
    check("v2_1", "hypervisors", "get_hypervisors_servers",
          scloud.get("/os-hypervisors/cell1/servers"))

    window = (f"start={(now - dt.timedelta(days=1)).isoformat(timespec='seconds')}"
              f"&end={(now + dt.timedelta(days=1)).isoformat(timespec='seconds')}")
    check("v2_1", "tenant_usages", "list_tenant_usage",
          scloud.get(f"/os-simple-tenant-usage?{window}&detailed=1"))
    check("v2_1", "tenant_usages", "get_tenant_usage",
          scloud.get(f"/os-simple-tenant-usage/demo-project?{window}", token=DEMO))

    check("v2_1", "hosts", "list_hosts", scloud.get("/os-hosts"))
    check("v2_1", "hosts", "get_host_detail", scloud.get("/os-hosts/cell1-host1"))
    check("v2_1", "hosts", "update_host",
          scloud.put("/os-hosts/cell1-host1", {"status": "enable"}))


def test_image_proxy_bodies(scloud, tmp_path):
    service = ImageService(ChunkStore(str(tmp_path / "images"), 1024 * 1024))
    before = services.image
    services.image = ImageClient(service)
    try:
        owner = RequestContext(user_id="demo", project_id="demo-project",
                               roles=["member", "reader"])
        image = service.create(owner, name="img", disk_format="raw", container_format="bare",
                               kernel="k")["id"]
        check("v2_1", "images", "list_images", scloud.get("/images", token=DEMO))
        check("v2_1", "images", "list_images_details", scloud.get("/images/detail",
                                                                  token=DEMO))
        check("v2_1", "images", "get_image", scloud.get(f"/images/{image}", token=DEMO))
        check("v2_1", "images", "image_metadata",
              scloud.get(f"/images/{image}/metadata", token=DEMO))
        check("v2_1", "images", "image_meta_item",
              scloud.get(f"/images/{image}/metadata/kernel", token=DEMO))
        check("v2_1", "images", "delete", scloud.delete(f"/images/{image}", token=DEMO))
    finally:
        services.image = before
