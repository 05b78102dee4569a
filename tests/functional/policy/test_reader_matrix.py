"""The reader role on every mutating route of every API: refused, and nothing changes.

The routes are read from each API's own route table (and Placement's), so a
route added without a recipe here fails ``test_every_mutating_route_has_a_recipe``
until someone says how a reader would call it, and a recipe makes the matrix
fail if the new route lets the reader through.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from policy_world import COMPUTE, PLACEMENT_VERSION, World, ok

MUTATING = ("POST", "PUT", "PATCH", "DELETE")
READER = "transcell-reader"
PATCH_TYPE = "application/openstack-images-v2.1-json-patch"


def mutating_routes() -> set[tuple[str, str, str]]:
    """(api, route template, method) for every write every API serves."""
    from placement import handler as placement_handler

    from transcell.api.compute.routes import ROUTES as compute
    from transcell.api.identity.app import make_app as identity_app
    from transcell.api.image.routes import ROUTES as image
    from transcell.api.network.routes import route_table
    from transcell.api.volume.routes import route_table as volume_routes

    tables: dict[str, dict[str, Any]] = {
        "compute": compute,
        "image": image,
        "network": route_table(None),  # type: ignore[arg-type]
        "volume": volume_routes(None),  # type: ignore[arg-type]
        "identity": {route.template: route.methods
                     for route in identity_app(None, None, lambda req: None).routes},  # type: ignore[arg-type]
        "placement": placement_handler.ROUTE_DECLARATIONS,
    }
    return {(api, template, method) for api, table in tables.items()
            for template, methods in table.items() for method in methods
            if method in MUTATING}


@dataclass
class Call:
    path: str
    body: Any = None
    expect: tuple[int, ...] = (403,)
    headers: dict[str, str] = field(default_factory=dict)
    data: bytes | None = None
    content_type: str | None = None

    def send(self, world: World, method: str, cloud: str = READER):
        headers = dict(self.headers)
        kwargs: dict[str, Any] = {}
        if self.data is not None or self.content_type:
            headers["Content-Type"] = self.content_type or "application/json"
            kwargs["data"] = self.data if self.data is not None else json.dumps(self.body)
        elif self.body is not None:
            kwargs["json"] = self.body
        return world.cloud.request(method, self.path, cloud=cloud, headers=headers, **kwargs)


def _mv(version: str) -> dict[str, str]:
    return {"OpenStack-API-Version": f"compute {version}"}


Recipe = Callable[[World], list[Call]]
S = f"{COMPUTE}/servers/{{server}}"
N = "/network/v2.0"


def _action(name: str, value: Any = None) -> Recipe:
    return lambda w: [Call(f"{COMPUTE}/servers/{w['server']}/action", {name: value})]


def _actions(w: World) -> list[Call]:
    return [call for recipe in (
        _action("os-stop"), _action("os-start"), _action("confirmResize"),
        _action("revertResize"), _action("migrate"),
        _action("resize", {"flavorRef": w["other_flavor"]}),
        *_power_actions()) for call in recipe(w)]


def _power_actions() -> list[Recipe]:
    """The actions on a guest where it runs: each one a member's (or an admin's)."""
    return [_action("reboot", {"type": "HARD"}), _action("pause"), _action("unpause"),
            _action("suspend"), _action("resume"), _action("lock"), _action("unlock"),
            _action("os-resetState", {"state": "error"}), _action("restore"),
            _action("forceDelete"), _action("os-getConsoleOutput", {}),
            _action("changePassword", {"adminPass": "reader"}), _action("rescue"),
            _action("unrescue")]


#: each tagged collection and the world's object of it
_TAGGED = {"networks": "network", "subnets": "subnet", "ports": "port", "routers": "router",
           "subnetpools": "subnetpool", "security-groups": "security_group"}


def _tags(suffix: str, body: Any = None) -> Recipe:
    return lambda w: [Call(f"{N}/{c}/{w[key]}/tags{suffix}", body)
                      for c, key in _TAGGED.items()]


def _placement(path: str, body: Any = None) -> Recipe:
    def recipe(w: World) -> list[Call]:
        filled = path.format(uuid=w["provider"], resource_class="VCPU",
                             consumer_uuid=w["server"], name="CUSTOM_POLICY_PROBE")
        return [Call("/placement" + filled, body, headers=dict(PLACEMENT_VERSION))]
    return recipe


def _revoke_demo_token(w: World) -> list[Call]:
    return [Call("/identity/v3/auth/tokens", headers={"X-Subject-Token": w["demo_token"]},
                 expect=(403, 404))]


def _token_for_another_project(w: World) -> list[Call]:
    auth = w.cloud.credentials(READER)
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": auth["username"], "password": auth["password"],
        "domain": {"name": "Default"}}}},
        "scope": {"project": {"name": "alt", "domain": {"name": "Default"}}}}}
    return [Call("/identity/v3/auth/tokens", body, expect=(401, 403))]


def _probe_account(w: World) -> dict[str, str]:
    """A project, a user and a member grant an admin made (once) for the reader to aim
    at: ones the reader's refusal alone protects, unlike the cloud's immutable own."""
    if "probe_project" not in w.ids:
        def made(path: str, body: dict) -> str:
            resp = w.cloud.request("POST", f"/identity/v3/{path}", json=body)
            assert resp.status_code == 201, resp.text
            return resp.json()[path[:-1]]["id"]

        w.ids["probe_project"] = made("projects", {"project": {"name": "reader-probe"}})
        w.ids["probe_user"] = made("users", {"user": {"name": "reader-probe", "password":
                                                      uuid.uuid4().hex}})
        roles = ok(w.cloud.request("GET", "/identity/v3/roles"))["roles"]
        w.ids.update({f"{r['name']}_role": r["id"] for r in roles})
        reader = w.cloud.credentials(READER)["username"]
        (w.ids["reader_user"],) = [u["id"] for u in ok(w.cloud.request(
            "GET", f"/identity/v3/users?name={reader}"))["users"]]
        ok(w.cloud.request("PUT", _grant_path(w, "member")), 204)
    return w.ids


def _grant_path(w: World, role: str, project: str = "probe_project") -> str:
    return (f"/identity/v3/projects/{w[project]}/users/{w['probe_user']}"
            f"/roles/{w[f'{role}_role']}")


def _metadef_recipes() -> dict[tuple[str, str, str], Recipe]:
    ns = "/v2/metadefs/namespaces"
    item = ns + "/{namespace}"

    def at(suffix: str, body: Any = None) -> Recipe:
        return lambda w: [Call(f"/image{ns}/{w['namespace']}{suffix}", body)]

    prop = {"name": "reader", "title": "Reader", "type": "string"}
    return {
        ("image", ns, "POST"): lambda w: [Call(f"/image{ns}", {"namespace": "reader-ns"})],
        ("image", item, "PUT"): at("", {"namespace": "renamed", "visibility": "private"}),
        ("image", item, "DELETE"): at(""),
        ("image", item + "/objects", "POST"): at("/objects", {"name": "reader"}),
        ("image", item + "/objects", "DELETE"): at("/objects"),
        ("image", item + "/objects/{object_name}", "PUT"): at("/objects/keep",
                                                              {"name": "renamed"}),
        ("image", item + "/objects/{object_name}", "DELETE"): at("/objects/keep"),
        ("image", item + "/properties", "POST"): at("/properties", prop),
        ("image", item + "/properties", "DELETE"): at("/properties"),
        ("image", item + "/properties/{property_name}", "PUT"): at("/properties/keep", prop),
        ("image", item + "/properties/{property_name}", "DELETE"): at("/properties/keep"),
        ("image", item + "/tags", "POST"): at("/tags", {"tags": [{"name": "reader"}]}),
        ("image", item + "/tags", "DELETE"): at("/tags"),
        ("image", item + "/tags/{tag_name}", "POST"): at("/tags/reader"),
        ("image", item + "/tags/{tag_name}", "PUT"): at("/tags/keep", {"name": "renamed"}),
        ("image", item + "/tags/{tag_name}", "DELETE"): at("/tags/keep"),
        ("image", item + "/resource_types", "POST"): at("/resource_types",
                                                        {"name": "OS::Nova::Flavor"}),
        ("image", item + "/resource_types/{resource_type}", "DELETE"): at(
            "/resource_types/OS::Glance::Image"),
    }


def _move_step(step: str) -> Recipe:
    return lambda w: [Call(f"{VOLUME}/os-transcell-moves/volumes/{w['volume']}/{step}",
                           {"move_id": READER_VOLUME, "to_backend": "local-cell2"},
                           headers=CINDER)]


def _demo_server_group(w: World) -> str:
    """A server group of the reader's project, made by one of its members."""
    resp = w.cloud.request("POST", f"{COMPUTE}/os-server-groups", cloud="transcell-demo",
                           json={"server_group": {"name": "keep", "policies": ["affinity"]}})
    assert resp.status_code == 200, resp.text
    return resp.json()["server_group"]["id"]


_INVENTORY = {"resource_provider_generation": 0, "total": 1}
VOLUME = "/volume/v3"
CINDER = {"OpenStack-API-Version": "volume 3.44"}
#: A volume nobody has: the policy answers before the volume is looked for.
READER_VOLUME = "5d1b3a3e-0c1f-4e59-9b5c-6a1f0e2d7c11"

RECIPES: dict[tuple[str, str, str], Recipe] = {
    # compute
    ("compute", "/v2.1/flavors", "POST"): lambda w: [Call(f"{COMPUTE}/flavors", {"flavor": {
        "name": "reader-flavor", "ram": 64, "vcpus": 1, "disk": 1}})],
    ("compute", "/v2.1/flavors/{flavor_id}", "PUT"): lambda w: [Call(
        f"{COMPUTE}/flavors/{w['flavor']}", {"flavor": {"description": "x"}},
        headers=_mv("2.55"))],
    ("compute", "/v2.1/flavors/{flavor_id}", "DELETE"): lambda w: [
        Call(f"{COMPUTE}/flavors/{w['flavor']}")],
    ("compute", "/v2.1/flavors/{flavor_id}/os-extra_specs", "POST"): lambda w: [Call(
        f"{COMPUTE}/flavors/{w['flavor']}/os-extra_specs", {"extra_specs": {"policy:x": "1"}})],
    ("compute", "/v2.1/flavors/{flavor_id}/os-extra_specs/{key}", "PUT"): lambda w: [Call(
        f"{COMPUTE}/flavors/{w['flavor']}/os-extra_specs/policy:probe", {"policy:probe": "2"})],
    ("compute", "/v2.1/flavors/{flavor_id}/os-extra_specs/{key}", "DELETE"): lambda w: [Call(
        f"{COMPUTE}/flavors/{w['flavor']}/os-extra_specs/policy:probe")],
    ("compute", "/v2.1/servers", "POST"): lambda w: [Call(f"{COMPUTE}/servers", {"server": {
        "name": "reader-server", "flavorRef": w["flavor"], "imageRef": w["base_image"],
        "networks": [{"uuid": w["network"]}]}})],
    ("compute", "/v2.1/servers/{server_id}", "PUT"): lambda w: [Call(
        S.format(server=w["server"]), {"server": {"name": "renamed-by-reader"}})],
    ("compute", "/v2.1/servers/{server_id}", "DELETE"): lambda w: [
        Call(S.format(server=w["server"]))],
    ("compute", "/v2.1/servers/{server_id}/action", "POST"): _actions,
    ("compute", "/v2.1/servers/{server_id}/os-server-password", "DELETE"): lambda w: [Call(
        S.format(server=w["server"]) + "/os-server-password")],
    ("compute", "/v2.1/servers/{server_id}/metadata", "POST"): lambda w: [Call(
        S.format(server=w["server"]) + "/metadata", {"metadata": {"reader": "x"}})],
    ("compute", "/v2.1/servers/{server_id}/metadata", "PUT"): lambda w: [Call(
        S.format(server=w["server"]) + "/metadata", {"metadata": {}})],
    ("compute", "/v2.1/servers/{server_id}/metadata/{key}", "PUT"): lambda w: [Call(
        S.format(server=w["server"]) + "/metadata/reader", {"meta": {"reader": "x"}})],
    ("compute", "/v2.1/servers/{server_id}/metadata/{key}", "DELETE"): lambda w: [Call(
        S.format(server=w["server"]) + "/metadata/keep")],
    ("compute", "/v2.1/os-server-groups", "POST"): lambda w: [Call(
        f"{COMPUTE}/os-server-groups",
        {"server_group": {"name": "reader", "policies": ["affinity"]}})],
    ("compute", "/v2.1/os-server-groups/{group_id}", "DELETE"): lambda w: [Call(
        f"{COMPUTE}/os-server-groups/{_demo_server_group(w)}")],
    ("compute", "/v2.1/servers/{server_id}/tags", "PUT"): lambda w: [Call(
        S.format(server=w["server"]) + "/tags", {"tags": ["reader"]}, headers=_mv("2.26"))],
    ("compute", "/v2.1/servers/{server_id}/tags", "DELETE"): lambda w: [Call(
        S.format(server=w["server"]) + "/tags", headers=_mv("2.26"))],
    ("compute", "/v2.1/servers/{server_id}/tags/{tag}", "PUT"): lambda w: [Call(
        S.format(server=w["server"]) + "/tags/reader", headers=_mv("2.26"))],
    ("compute", "/v2.1/servers/{server_id}/tags/{tag}", "DELETE"): lambda w: [Call(
        S.format(server=w["server"]) + "/tags/keep", headers=_mv("2.26"))],
    # A keypair belongs to its user, and Nova lets anyone make their own; the
    # write a reader must not do is one for the demo user.
    ("compute", "/v2.1/os-keypairs", "POST"): lambda w: [Call(
        f"{COMPUTE}/os-keypairs", {"keypair": {"name": "planted", "user_id": w["demo_user"]}},
        headers=_mv("2.10"))],
    ("compute", "/v2.1/os-keypairs/{name}", "DELETE"): lambda w: [
        Call(f"{COMPUTE}/os-keypairs/{w['keypair']}?user_id={w['demo_user']}",
             headers=_mv("2.10")),
        Call(f"{COMPUTE}/os-keypairs/{w['keypair']}", expect=(404,))],
    # the security group and volume proxies (until 2.36): the reader's own project's
    # group and volume, which only its members may change
    ("compute", "/v2.1/os-security-groups", "POST"): lambda w: [Call(
        f"{COMPUTE}/os-security-groups", {"security_group": {
            "name": "reader-sg", "description": "r"}})],
    ("compute", "/v2.1/os-security-groups", "DELETE"): lambda w: [Call(
        f"{COMPUTE}/os-security-groups", expect=(404,))],
    ("compute", "/v2.1/os-security-groups/{group_id}", "PUT"): lambda w: [Call(
        f"{COMPUTE}/os-security-groups/{w['security_group']}", {"security_group": {
            "name": "renamed", "description": "r"}})],
    ("compute", "/v2.1/os-security-groups/{group_id}", "DELETE"): lambda w: [Call(
        f"{COMPUTE}/os-security-groups/{w['security_group']}")],
    ("compute", "/v2.1/os-security-group-rules", "POST"): lambda w: [Call(
        f"{COMPUTE}/os-security-group-rules", {"security_group_rule": {
            "parent_group_id": w["security_group"], "ip_protocol": "tcp",
            "from_port": 2222, "to_port": 2222, "cidr": "10.0.0.0/8"}})],
    ("compute", "/v2.1/os-security-group-rules/{rule_id}", "DELETE"): lambda w: [Call(
        f"{COMPUTE}/os-security-group-rules/{w['security_group_rule']}")],
    ("compute", "/v2.1/os-volumes", "POST"): lambda w: [Call(
        f"{COMPUTE}/os-volumes", {"volume": {"size": 1, "display_name": "reader-vol"}})],
    ("compute", "/v2.1/os-volumes", "DELETE"): lambda w: [Call(
        f"{COMPUTE}/os-volumes", expect=(404,))],
    ("compute", "/v2.1/os-snapshots", "POST"): lambda w: [Call(
        f"{COMPUTE}/os-snapshots", {"snapshot": {"volume_id": w["volume"], "force": True}})],
    ("compute", "/v2.1/os-snapshots/{snapshot_id}", "DELETE"): lambda w: [Call(
        f"{COMPUTE}/os-snapshots/{w['volume_snapshot']}")],
    ("compute", "/v2.1/os-volumes/{volume_id}", "DELETE"): lambda w: [Call(
        f"{COMPUTE}/os-volumes/{w['volume']}")],
    ("compute", "/v2.1/os-services/{service_id}", "PUT"): lambda w: [Call(
        f"{COMPUTE}/os-services/{w['service']}", {"status": "disabled"},
        headers=_mv("2.53"))],
    ("compute", "/v2.1/os-services/{service_id}", "DELETE"): lambda w: [Call(
        f"{COMPUTE}/os-services/{w['service']}", headers=_mv("2.53"))],
    ("compute", "/v2.1/os-aggregates", "POST"): lambda w: [Call(
        f"{COMPUTE}/os-aggregates", {"aggregate": {"name": "reader-agg"}})],
    ("compute", "/v2.1/os-aggregates/{aggregate_id}", "PUT"): lambda w: [Call(
        f"{COMPUTE}/os-aggregates/{w['aggregate']}", {"aggregate": {"name": "renamed"}})],
    ("compute", "/v2.1/os-aggregates/{aggregate_id}", "DELETE"): lambda w: [Call(
        f"{COMPUTE}/os-aggregates/{w['aggregate']}")],
    ("compute", "/v2.1/os-aggregates/{aggregate_id}/action", "POST"): lambda w: [
        Call(f"{COMPUTE}/os-aggregates/{w['aggregate']}/action", body) for body in (
            {"add_host": {"host": w["compute_host"]}},
            {"remove_host": {"host": w["compute_host"]}},
            {"set_metadata": {"metadata": {"reader": "x"}}})],
    ("compute", "/v2.1/os-aggregates/{aggregate_id}/images", "POST"): lambda w: [Call(
        f"{COMPUTE}/os-aggregates/{w['aggregate']}/images",
        {"cache": [{"id": w["base_image"]}]}, headers=_mv("2.81"))],
    ("compute", "/v2.1/servers/{server_id}/os-volume_attachments", "POST"): lambda w: [Call(
        S.format(server=w["server"]) + "/os-volume_attachments",
        {"volumeAttachment": {"volumeId": READER_VOLUME}})],
    ("compute", "/v2.1/servers/{server_id}/os-volume_attachments/{volume_id}", "PUT"):
        lambda w: [Call(S.format(server=w["server"]) + f"/os-volume_attachments/{READER_VOLUME}",
                        {"volumeAttachment": {"volumeId": READER_VOLUME}},
                        headers=_mv("2.84"))],
    ("compute", "/v2.1/servers/{server_id}/os-volume_attachments/{volume_id}", "DELETE"):
        lambda w: [Call(S.format(server=w["server"]) + f"/os-volume_attachments/{READER_VOLUME}")],
    ("compute", "/v2.1/os-transcell-move-plans", "POST"): lambda w: [Call(
        f"{COMPUTE}/os-transcell-move-plans", {"move_plan": {"server_id": w["server"]}})],
    ("compute", "/v2.1/os-transcell-drains", "POST"): lambda w: [Call(
        f"{COMPUTE}/os-transcell-drains", {"drain": {"cell": "cell1"}})],
    ("compute", "/v2.1/os-transcell-drains/{drain_id}/action", "POST"): lambda w: [
        Call(f"{COMPUTE}/os-transcell-drains/{uuid.uuid4()}/action", {"pause": None}),
        Call(f"{COMPUTE}/os-transcell-drains/{uuid.uuid4()}/action", {"resume": None})],
    # what other services tell compute: the demo server's events, its volume's snapshot
    ("compute", "/v2.1/os-server-external-events", "POST"): lambda w: [Call(
        f"{COMPUTE}/os-server-external-events", {"events": [
            {"name": "power-update", "server_uuid": w["server"], "tag": "POWER_OFF"}]},
        headers=_mv("2.76"))],
    ("compute", "/v2.1/os-assisted-volume-snapshots", "POST"): lambda w: [Call(
        f"{COMPUTE}/os-assisted-volume-snapshots", {"snapshot": {
            "volume_id": w["volume"], "create_info": {
                "snapshot_id": READER_VOLUME, "type": "qcow2", "new_file": "reader"}}})],
    ("compute", "/v2.1/os-assisted-volume-snapshots/{snapshot_id}", "DELETE"): lambda w: [Call(
        f"{COMPUTE}/os-assisted-volume-snapshots/{READER_VOLUME}?delete_info="
        + json.dumps({"volume_id": w["volume"]}))],
    ("compute", "/v2.1/os-quota-sets/{tenant_id}", "PUT"): lambda w: [Call(
        f"{COMPUTE}/os-quota-sets/{w['demo_project']}", {"quota_set": {"instances": 1000}})],
    ("compute", "/v2.1/os-quota-sets/{tenant_id}", "DELETE"): lambda w: [Call(
        f"{COMPUTE}/os-quota-sets/{w['demo_project']}")],
    ("compute", "/v2.1/os-quota-class-sets/{quota_class}", "PUT"): lambda w: [Call(
        f"{COMPUTE}/os-quota-class-sets/default", {"quota_class_set": {"instances": 1000}})],
    ("compute", "/v2.1/flavors/{flavor_id}/action", "POST"): lambda w: [
        Call(f"{COMPUTE}/flavors/{w['flavor']}/action", {name: {"tenant": w["demo_project"]}})
        for name in ("addTenantAccess", "removeTenantAccess")],
    ("compute", "/v2.1/os-hosts/{host_name}", "PUT"): lambda w: [Call(
        f"{COMPUTE}/os-hosts/{w['compute_host']}", {"status": "disable"})],
    # the image proxy: the image service refuses the reader's writes to its project's image
    ("compute", "/v2.1/images/{image_id}", "DELETE"): lambda w: [Call(
        f"{COMPUTE}/images/{w['image']}")],
    # a blank image id is missing (404) before any policy; the collection only lists
    ("compute", "/v2.1/images", "DELETE"): lambda w: [
        Call(f"{COMPUTE}/images/", expect=(404,)), Call(f"{COMPUTE}/images", expect=(405,))],
    ("compute", "/v2.1/images/{image_id}/metadata", "POST"): lambda w: [Call(
        f"{COMPUTE}/images/{w['image']}/metadata", {"metadata": {"reader": "x"}})],
    ("compute", "/v2.1/images/{image_id}/metadata", "PUT"): lambda w: [Call(
        f"{COMPUTE}/images/{w['image']}/metadata", {"metadata": {"reader": "x"}})],
    ("compute", "/v2.1/images/{image_id}/metadata/{key}", "PUT"): lambda w: [Call(
        f"{COMPUTE}/images/{w['image']}/metadata/reader", {"meta": {"reader": "x"}})],
    ("compute", "/v2.1/images/{image_id}/metadata/{key}", "DELETE"): lambda w: [Call(
        f"{COMPUTE}/images/{w['image']}/metadata/reader")],
    # volume
    ("volume", "/v3/volumes", "POST"): lambda w: [Call(
        f"{VOLUME}/volumes", {"volume": {"name": "reader-volume", "size": 1}},
        headers=CINDER)],
    ("volume", "/v3/volumes/{volume_id}", "PUT"): lambda w: [Call(
        f"{VOLUME}/volumes/{w['volume']}", {"volume": {"name": "renamed"}}, headers=CINDER)],
    ("volume", "/v3/volumes/{volume_id}", "DELETE"): lambda w: [Call(
        f"{VOLUME}/volumes/{w['volume']}", headers=CINDER)],
    ("volume", "/v3/volumes/{volume_id}/action", "POST"): lambda w: [
        Call(f"{VOLUME}/volumes/{w['volume']}/action", body, headers=CINDER) for body in (
            {"os-extend": {"new_size": 2}}, {"os-set_bootable": {"bootable": True}},
            {"os-update_readonly_flag": {"readonly": True}},
            {"os-volume_upload_image": {"image_name": "reader", "force": True}},
            {"os-reserve": None}, {"os-detach": {"attachment_id": w["attachment"]}},
            {"os-reset_status": {"status": "error"}},
            {"os-migrate_volume": {"host": "transcell@local-cell2#local-cell2"}},
            {"os-force_delete": None})],
    ("volume", "/v3/volumes/{volume_id}/metadata", "POST"): lambda w: [Call(
        f"{VOLUME}/volumes/{w['volume']}/metadata", {"metadata": {"reader": "x"}},
        headers=CINDER)],
    ("volume", "/v3/volumes/{volume_id}/metadata", "PUT"): lambda w: [Call(
        f"{VOLUME}/volumes/{w['volume']}/metadata", {"metadata": {}}, headers=CINDER)],
    ("volume", "/v3/volumes/{volume_id}/metadata/{key}", "PUT"): lambda w: [Call(
        f"{VOLUME}/volumes/{w['volume']}/metadata/keep", {"meta": {"keep": "2"}},
        headers=CINDER)],
    ("volume", "/v3/volumes/{volume_id}/metadata/{key}", "DELETE"): lambda w: [Call(
        f"{VOLUME}/volumes/{w['volume']}/metadata/keep", headers=CINDER)],
    ("volume", "/v3/snapshots", "POST"): lambda w: [Call(
        f"{VOLUME}/snapshots", {"snapshot": {"volume_id": w["volume"], "force": True}},
        headers=CINDER)],
    ("volume", "/v3/snapshots/{snapshot_id}", "PUT"): lambda w: [Call(
        f"{VOLUME}/snapshots/{w['volume_snapshot']}", {"snapshot": {"name": "renamed"}},
        headers=CINDER)],
    ("volume", "/v3/snapshots/{snapshot_id}", "DELETE"): lambda w: [Call(
        f"{VOLUME}/snapshots/{w['volume_snapshot']}", headers=CINDER)],
    ("volume", "/v3/attachments", "POST"): lambda w: [Call(
        f"{VOLUME}/attachments", {"attachment": {"volume_uuid": w["volume"],
                                                 "instance_uuid": w["server"]}},
        headers=CINDER)],
    ("volume", "/v3/attachments/{attachment_id}", "PUT"): lambda w: [Call(
        f"{VOLUME}/attachments/{w['attachment']}",
        {"attachment": {"connector": {"host": w["server_host"]}}}, headers=CINDER)],
    ("volume", "/v3/attachments/{attachment_id}", "DELETE"): lambda w: [Call(
        f"{VOLUME}/attachments/{w['attachment']}", headers=CINDER)],
    ("volume", "/v3/attachments/{attachment_id}/action", "POST"): lambda w: [Call(
        f"{VOLUME}/attachments/{w['attachment']}/action", {"os-complete": None},
        headers=CINDER)],
    **{("volume", f"/v3/os-transcell-moves/volumes/{{volume_id}}/{step}", "POST"):
       _move_step(step) for step in ("copy", "switch", "confirm", "revert")},
    # image
    ("image", "/v2/images", "POST"): lambda w: [
        Call("/image/v2/images", {"name": "reader-image"}),
        Call("/image/v2/images", {"name": "reader-public", "visibility": "public"})],
    ("image", "/v2/images/{image_id}", "PATCH"): lambda w: [Call(
        f"/image/v2/images/{w['image']}", data=json.dumps(
            [{"op": "replace", "path": "/name", "value": "renamed"}]).encode(),
        content_type=PATCH_TYPE)],
    ("image", "/v2/images/{image_id}", "DELETE"): lambda w: [
        Call(f"/image/v2/images/{w['image']}")],
    ("image", "/v2/images/{image_id}/file", "PUT"): lambda w: [Call(
        f"/image/v2/images/{w['image']}/file", data=b"\0" * 4096,
        content_type="application/octet-stream")],
    ("image", "/v2/images/{image_id}/chunk-upload", "POST"): lambda w: [
        Call(f"/image/v2/images/{w['image']}/chunk-upload")],
    ("image", "/v2/images/{image_id}/chunk-upload", "DELETE"): lambda w: [
        Call(f"/image/v2/images/{w['image']}/chunk-upload")],
    ("image", "/v2/images/{image_id}/chunk-upload/missing", "POST"): lambda w: [
        Call(f"/image/v2/images/{w['image']}/chunk-upload/missing", {"digests": []})],
    ("image", "/v2/images/{image_id}/chunk-upload/commit", "POST"): lambda w: [
        Call(f"/image/v2/images/{w['image']}/chunk-upload/commit",
             {"size": 0, "chunks": []})],
    **{("image", f"/v2/images/{{image_id}}/spool/{step}", "POST"): (
        lambda w, step=step: [Call(f"/image/v2/images/{w['image']}/spool/{step}")])
       for step in ("lend", "confirm", "return")},
    ("image", "/v2/images", "DELETE"): lambda w: [Call("/image/v2/images", expect=(405,))],
    ("image", "/v2/images/{image_id}/members", "POST"): lambda w: [Call(
        f"/image/v2/images/{w['image']}/members", {"member": "reader-share"})],
    ("image", "/v2/images/{image_id}/members/{member_id}", "PUT"): lambda w: [Call(
        f"/image/v2/images/{w['image']}/members/{w['demo_project']}",
        {"status": "accepted"})],
    ("image", "/v2/images/{image_id}/members/{member_id}", "DELETE"): lambda w: [Call(
        f"/image/v2/images/{w['image']}/members/{w['demo_project']}")],
    ("image", "/v2/images/{image_id}/tags/{tag}", "PUT"): lambda w: [Call(
        f"/image/v2/images/{w['image']}/tags/reader")],
    ("image", "/v2/images/{image_id}/tags/{tag}", "DELETE"): lambda w: [Call(
        f"/image/v2/images/{w['image']}/tags/reader")],
    **{("image", f"/v2/images/{{image_id}}/actions/{verb}", "POST"): (
        lambda w, verb=verb: [Call(f"/image/v2/images/{w['image']}/actions/{verb}")])
       for verb in ("deactivate", "reactivate")},
    ("image", "/v2/images/{image_id}/chunks/{chunk}", "PUT"): lambda w: [Call(
        f"/image/v2/images/{w['image']}/chunks/0", data=b"\0" * 4096,
        content_type="application/octet-stream",
        headers={"X-Image-Chunk-Sha256": "ad7facb2586fc6e966c004d7d1d16b024f5805ff7cb47c7a8"
                                         "5dabd8b48892ca7"})],
    # network
    ("network", "/v2.0/networks", "POST"): lambda w: [
        Call(f"{N}/networks", {"network": {"name": "reader-net"}}),
        Call(f"{N}/networks", {"networks": [{"name": "reader-bulk"}]})],
    ("network", "/v2.0/networks/{resource_id}", "PUT"): lambda w: [
        Call(f"{N}/networks/{w['network']}", {"network": {"name": "renamed"}})],
    ("network", "/v2.0/networks/{resource_id}", "DELETE"): lambda w: [
        Call(f"{N}/networks/{w['network']}")],
    ("network", "/v2.0/subnets", "POST"): lambda w: [Call(f"{N}/subnets", {"subnet": {
        "network_id": w["network"], "cidr": "192.168.78.0/24", "ip_version": 4}})],
    ("network", "/v2.0/subnets/{resource_id}", "PUT"): lambda w: [
        Call(f"{N}/subnets/{w['subnet']}", {"subnet": {"name": "renamed"}})],
    ("network", "/v2.0/subnets/{resource_id}", "DELETE"): lambda w: [
        Call(f"{N}/subnets/{w['subnet']}")],
    ("network", "/v2.0/ports", "POST"): lambda w: [
        Call(f"{N}/ports", {"port": {"network_id": w["network"]}}),
        Call(f"{N}/ports", {"ports": [{"network_id": w["network"]}]}),
        Call(f"{N}/ports", {"port": {"network_id": w["network"],
                                     "binding:host_id": w["server_host"]}})],
    ("network", "/v2.0/ports/{resource_id}", "PUT"): lambda w: [
        Call(f"{N}/ports/{w[key]}", body) for key in ("port", "server_port") for body in (
            {"port": {"name": "renamed"}},
            {"port": {"device_id": "", "device_owner": ""}},
            {"port": {"binding:host_id": "elsewhere"}})],
    ("network", "/v2.0/ports/{resource_id}", "DELETE"): lambda w: [
        Call(f"{N}/ports/{w['server_port']}"), Call(f"{N}/ports/{w['port']}")],
    ("network", "/v2.0/ports/{port_id}/bindings", "POST"): lambda w: [Call(
        f"{N}/ports/{w['server_port']}/bindings", {"binding": {"host": "elsewhere"}})],
    ("network", "/v2.0/ports/{port_id}/bindings/{host}", "DELETE"): lambda w: [Call(
        f"{N}/ports/{w['server_port']}/bindings/{w['server_host']}")],
    ("network", "/v2.0/ports/{port_id}/bindings/{host}/activate", "PUT"): lambda w: [Call(
        f"{N}/ports/{w['server_port']}/bindings/{w['server_host']}/activate")],
    ("network", "/v2.0/segments", "POST"): lambda w: [Call(f"{N}/segments", {"segment": {
        "network_id": w["network"], "network_type": "vxlan"}})],
    ("network", "/v2.0/segments/{resource_id}", "PUT"): lambda w: [Call(
        f"{N}/segments/{w['network']}", {"segment": {"name": "r"}}, expect=(404,))],
    ("network", "/v2.0/segments/{resource_id}", "DELETE"): lambda w: [Call(
        f"{N}/segments/{w['network']}", expect=(404,))],
    ("network", "/v2.0/transcell/port-host-checks", "POST"): lambda w: [Call(
        f"{N}/transcell/port-host-checks", {"port_host_check": {
            "port_ids": [w["server_port"]], "host": "cell2-host1"}})],
    ("network", "/v2.0/ports/{port_id}/readdress", "PUT"): lambda w: [Call(
        f"{N}/ports/{w['server_port']}/readdress", {"readdress": {"host": "cell2-host1"}})],
    ("network", "/v2.0/ports/{port_id}/restore_addresses", "PUT"): lambda w: [Call(
        f"{N}/ports/{w['server_port']}/restore_addresses",
        {"restore_addresses": {"fixed_ips": []}})],
    ("network", "/v2.0/security-groups", "POST"): lambda w: [Call(
        f"{N}/security-groups", {"security_group": {"name": "reader-sg"}})],
    ("network", "/v2.0/security-groups/{item_id}", "PUT"): lambda w: [Call(
        f"{N}/security-groups/{w['security_group']}", {"security_group": {
            "description": "r"}})],
    ("network", "/v2.0/security-groups/{item_id}", "DELETE"): lambda w: [Call(
        f"{N}/security-groups/{w['security_group']}")],
    ("network", "/v2.0/security-group-rules", "POST"): lambda w: [Call(
        f"{N}/security-group-rules", {"security_group_rule": {
            "security_group_id": w["security_group"], "direction": "ingress"}})],
    ("network", "/v2.0/security-group-rules/{item_id}", "DELETE"): lambda w: [Call(
        f"{N}/security-group-rules/{w['security_group_rule']}")],
    ("network", "/v2.0/routers", "POST"): lambda w: [Call(f"{N}/routers", {"router": {
        "name": "reader-router"}})],
    ("network", "/v2.0/routers/{resource_id}", "PUT"): lambda w: [Call(
        f"{N}/routers/{w['router']}", {"router": {"name": "renamed"}})],
    ("network", "/v2.0/routers/{resource_id}", "DELETE"): lambda w: [Call(
        f"{N}/routers/{w['router']}")],
    ("network", "/v2.0/routers/{router_id}/add_router_interface", "PUT"): lambda w: [Call(
        f"{N}/routers/{w['router']}/add_router_interface", {"port_id": w["port"]})],
    ("network", "/v2.0/routers/{router_id}/remove_router_interface", "PUT"): lambda w: [Call(
        f"{N}/routers/{w['router']}/remove_router_interface", {"subnet_id": w["subnet"]})],
    ("network", "/v2.0/subnetpools", "POST"): lambda w: [Call(f"{N}/subnetpools", {
        "subnetpool": {"name": "reader-pool", "prefixes": ["10.99.0.0/16"]}})],
    ("network", "/v2.0/subnetpools/{resource_id}", "PUT"): lambda w: [Call(
        f"{N}/subnetpools/{w['subnetpool']}", {"subnetpool": {"name": "renamed"}})],
    ("network", "/v2.0/subnetpools/{resource_id}", "DELETE"): lambda w: [Call(
        f"{N}/subnetpools/{w['subnetpool']}")],
    ("network", "/v2.0/{collection}/{resource_id}/tags", "PUT"): _tags("", {"tags": ["r"]}),
    ("network", "/v2.0/{collection}/{resource_id}/tags", "DELETE"): _tags(""),
    ("network", "/v2.0/{collection}/{resource_id}/tags/{tag}", "PUT"): _tags("/reader"),
    ("network", "/v2.0/{collection}/{resource_id}/tags/{tag}", "DELETE"): _tags("/keep"),
    # image metadata definitions: only an administrator writes them
    **_metadef_recipes(),
    # identity
    ("identity", "/v3/auth/tokens", "POST"): _token_for_another_project,
    ("identity", "/v3/auth/tokens", "DELETE"): _revoke_demo_token,
    ("identity", "/v3/projects", "POST"): lambda w: [Call(
        "/identity/v3/projects", {"project": {"name": "reader-project"}})],
    ("identity", "/v3/projects/{project_id}", "DELETE"): lambda w: [Call(
        f"/identity/v3/projects/{_probe_account(w)['probe_project']}")],
    ("identity", "/v3/users", "POST"): lambda w: [Call(
        "/identity/v3/users", {"user": {"name": "reader-user", "password": "reader"}})],
    ("identity", "/v3/users/{user_id}", "DELETE"): lambda w: [Call(
        f"/identity/v3/users/{_probe_account(w)['probe_user']}")],
    ("identity", "/v3/roles", "POST"): lambda w: [Call(
        "/identity/v3/roles", {"role": {"name": "reader-role"}})],
    # the reader making itself an admin, in its own project or the probe's
    ("identity", "/v3/projects/{project_id}/users/{user_id}/roles/{role_id}", "PUT"):
        lambda w: [Call(_grant_path(_probe_account(w), "admin")),
                   Call(f"/identity/v3/projects/{w['demo_project']}/users/"
                        f"{w['reader_user']}/roles/{w['admin_role']}")],
    ("identity", "/v3/projects/{project_id}/users/{user_id}/roles/{role_id}", "DELETE"):
        lambda w: [Call(_grant_path(_probe_account(w), "member"))],
    # placement (through the /placement mount)
    ("placement", "/resource_classes", "POST"): _placement("/resource_classes",
                                                           {"name": "CUSTOM_POLICY_PROBE"}),
    ("placement", "/resource_classes/{name}", "PUT"): _placement("/resource_classes/{name}"),
    ("placement", "/resource_classes/{name}", "DELETE"): _placement(
        "/resource_classes/{name}"),
    ("placement", "/resource_providers", "POST"): _placement(
        "/resource_providers", {"name": "reader-rp"}),
    ("placement", "/resource_providers/{uuid}", "PUT"): _placement(
        "/resource_providers/{uuid}", {"name": "renamed"}),
    ("placement", "/resource_providers/{uuid}", "DELETE"): _placement(
        "/resource_providers/{uuid}"),
    ("placement", "/resource_providers/{uuid}/inventories", "POST"): _placement(
        "/resource_providers/{uuid}/inventories", {"resource_class": "CUSTOM_X", "total": 1}),
    ("placement", "/resource_providers/{uuid}/inventories", "PUT"): _placement(
        "/resource_providers/{uuid}/inventories",
        {"resource_provider_generation": 0, "inventories": {}}),
    ("placement", "/resource_providers/{uuid}/inventories", "DELETE"): _placement(
        "/resource_providers/{uuid}/inventories"),
    ("placement", "/resource_providers/{uuid}/inventories/{resource_class}", "PUT"):
        _placement("/resource_providers/{uuid}/inventories/{resource_class}", _INVENTORY),
    ("placement", "/resource_providers/{uuid}/inventories/{resource_class}", "DELETE"):
        _placement("/resource_providers/{uuid}/inventories/{resource_class}"),
    ("placement", "/resource_providers/{uuid}/aggregates", "PUT"): _placement(
        "/resource_providers/{uuid}/aggregates",
        {"resource_provider_generation": 0, "aggregates": []}),
    ("placement", "/allocations", "POST"): _placement("/allocations", {}),
    ("placement", "/allocations/{consumer_uuid}", "PUT"): _placement(
        "/allocations/{consumer_uuid}", {"allocations": {}}),
    ("placement", "/allocations/{consumer_uuid}", "DELETE"): _placement(
        "/allocations/{consumer_uuid}"),
    ("placement", "/traits/{name}", "PUT"): _placement("/traits/{name}"),
    ("placement", "/traits/{name}", "DELETE"): _placement("/traits/{name}"),
    ("placement", "/resource_providers/{uuid}/traits", "PUT"): _placement(
        "/resource_providers/{uuid}/traits",
        {"resource_provider_generation": 0, "traits": []}),
    ("placement", "/resource_providers/{uuid}/traits", "DELETE"): _placement(
        "/resource_providers/{uuid}/traits"),
    ("placement", "/reshaper", "POST"): _placement("/reshaper", {}),
}


def test_every_mutating_route_has_a_recipe():
    routes = mutating_routes()
    unknown = sorted(routes - set(RECIPES))
    assert not unknown, ("mutating routes the reader matrix does not know how to call; add "
                         f"a recipe (and a policy check) for: {unknown}")
    stale = sorted(set(RECIPES) - routes)
    assert not stale, f"recipes for routes that no longer exist: {stale}"


def _volatile(state: dict[str, Any]) -> dict[str, Any]:
    """Heartbeats move on their own; everything else must stay exactly as it was."""
    services_path = next(path for path in state if path.endswith("/os-services"))
    code, body = state[services_path]
    for service in body.get("services", []):
        service.pop("updated_at", None)
    return state


def _check_envelope(api: str, resp) -> None:
    body = resp.json() if resp.content else {}
    if api == "network" and resp.status_code == 403:
        assert body["NeutronError"]["type"] == "PolicyNotAuthorized", body
    elif api == "network":
        assert "NeutronError" in body, body
    elif api == "image":
        assert body.get("code", "").startswith(str(resp.status_code)), body
        assert "message" in body, body


@pytest.mark.parametrize("route", sorted(RECIPES), ids=lambda r: f"{r[0]} {r[2]} {r[1]}")
def test_reader_cannot_write(world: World, route: tuple[str, str, str]):
    api, _template, method = route
    for call in RECIPES[route](world):
        before = _volatile(world.snapshot())
        resp = call.send(world, method)
        assert resp.status_code in call.expect, (
            f"reader {method} {call.path}: {resp.status_code} {resp.text[:300]}")
        _check_envelope(api, resp)
        after = _volatile(world.snapshot())
        changed = [key for key in before if before[key] != after[key]]
        assert not changed, f"reader {method} {call.path} changed {changed}"


READS = [
    f"{COMPUTE}/servers/{{server}}", f"{COMPUTE}/servers", f"{COMPUTE}/servers/{{server}}/tags",
    "/image/v2/images/{image}", "/network/v2.0/networks/{network}",
    "/network/v2.0/subnets/{subnet}", "/network/v2.0/ports/{port}",
    "/network/v2.0/ports/{server_port}", "/network/v2.0/security-groups/{security_group}",
    "/network/v2.0/networks/{network}/tags", "/network/v2.0/ports/{port}/tags/keep",
    "/network/v2.0/routers/{router}", "/network/v2.0/routers/{router}/tags/keep",
    "/network/v2.0/subnetpools/{subnetpool}",
    "/image/v2/metadefs/namespaces/{namespace}", "/image/v2/metadefs/namespaces/{namespace}"
    "/tags/keep",
]


@pytest.mark.parametrize("template", READS)
def test_reader_reads_its_project(world: World, template: str):
    path = template.format(**world.ids)
    resp = world.cloud.request("GET", path, cloud=READER, headers=_mv("2.26"))
    assert resp.status_code in (200, 204), (path, resp.status_code, resp.text[:300])


def test_reader_lists_its_projects_objects(world: World):
    def ids_of(path: str, key: str) -> set[str]:
        return {item["id"] for item in ok(world.cloud.request("GET", path, cloud=READER))[key]}

    assert world["image"] in ids_of("/image/v2/images", "images")
    assert world["network"] in ids_of("/network/v2.0/networks", "networks")
    assert {world["port"], world["server_port"]} <= ids_of("/network/v2.0/ports", "ports")
    assert world["subnet"] in ids_of("/network/v2.0/subnets", "subnets")
    port = ok(world.cloud.request("GET", f"/network/v2.0/ports/{world['server_port']}",
                                  cloud=READER))["port"]
    assert "binding:host_id" not in port


def test_member_acts_on_its_project(world: World):
    cloud, demo = world.cloud, "transcell-demo"
    net = ok(cloud.request("POST", f"{N}/networks", cloud=demo,
                           json={"network": {"name": "member-net"}}), 201)["network"]
    ok(cloud.request("POST", f"{N}/subnets", cloud=demo, json={"subnet": {
        "network_id": net["id"], "cidr": "192.168.90.0/24", "ip_version": 4}}), 201)
    port = ok(cloud.request("POST", f"{N}/ports", cloud=demo,
                            json={"port": {"network_id": net["id"]}}), 201)["port"]
    ok(cloud.request("PUT", f"{N}/ports/{port['id']}", cloud=demo,
                     json={"port": {"name": "renamed"}}))
    ok(cloud.request("PUT", f"{N}/ports/{port['id']}/tags/mine", cloud=demo), 201)
    ok(cloud.request("DELETE", f"{N}/ports/{port['id']}", cloud=demo), 204)
    ok(cloud.request("DELETE", f"{N}/networks/{net['id']}", cloud=demo), 204)

    image = ok(cloud.request("POST", "/image/v2/images", cloud=demo, json={
        "name": "member-image", "disk_format": "raw", "container_format": "bare"}), 201)
    ok(cloud.request("PATCH", f"/image/v2/images/{image['id']}", cloud=demo,
                     data=json.dumps([{"op": "add", "path": "/purpose", "value": "x"}]),
                     headers={"Content-Type": PATCH_TYPE}))
    ok(cloud.request("PUT", f"/image/v2/images/{image['id']}/file", cloud=demo,
                     data=b"\1" * 4096,
                     headers={"Content-Type": "application/octet-stream"}), 204)
    ok(cloud.request("DELETE", f"/image/v2/images/{image['id']}", cloud=demo), 204)


def test_member_cannot_publicize_or_plug_ports(world: World):
    cloud, demo = world.cloud, "transcell-demo"
    resp = cloud.request("POST", "/image/v2/images", cloud=demo,
                         json={"name": "wants-public", "visibility": "public"})
    assert resp.status_code == 403, resp.text
    resp = cloud.request("PUT", f"{N}/ports/{world['port']}", cloud=demo,
                         json={"port": {"binding:host_id": world["server_host"]}})
    assert resp.status_code == 403, resp.text
    assert resp.json()["NeutronError"]["type"] == "PolicyNotAuthorized"
    resp = cloud.request("PUT", f"{N}/ports/{world['port']}", cloud=demo,
                         json={"port": {"device_owner": "compute:nova"}})
    assert resp.status_code == 403, resp.text


@pytest.mark.parametrize("method,template,body", [
    ("PATCH", "/image/v2/images/{image}", [{"op": "replace", "path": "/name", "value": "x"}]),
    ("DELETE", "/image/v2/images/{image}", None),
    ("PUT", "/network/v2.0/networks/{network}", {"network": {"name": "x"}}),
    ("DELETE", "/network/v2.0/networks/{network}", None),
    ("PUT", "/network/v2.0/ports/{port}", {"port": {"name": "x"}}),
    ("DELETE", "/network/v2.0/ports/{port}", None),
    ("DELETE", "/network/v2.0/ports/{server_port}", None),
    ("PUT", "/network/v2.0/ports/{port}/tags/alt", None),
])
def test_member_of_another_project_cannot_touch_demos_objects(world, method, template, body):
    path = template.format(**world.ids)
    before = _volatile(world.snapshot())
    headers = {"Content-Type": PATCH_TYPE} if method == "PATCH" else {}
    resp = world.cloud.request(method, path, cloud="transcell-alt", headers=headers,
                               data=json.dumps(body) if body is not None else None)
    assert resp.status_code in (403, 404), (resp.status_code, resp.text[:300])
    assert _volatile(world.snapshot()) == before
