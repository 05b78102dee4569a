"""/servers: create, list, show, rename and delete servers."""

from __future__ import annotations

import ipaddress
import secrets
import uuid as uuidlib
from typing import Any

import webob
from sqlalchemy import select

from transcell import exception, policy
from transcell.api.compute import common, multiple_create, server_listing
from transcell.api.compute.app import api_version
from transcell.api.compute.common import collection_links, validate
from transcell.api.compute.flavors import flavor_to_dict
from transcell.api.compute.schemas import servers as schema
from transcell.api.compute.views import servers as view
from transcell.compute import server_groups as groups
from transcell.compute import volumes
from transcell.compute.api import API
from transcell.db import api_models as am
from transcell.db.session import api_session
from transcell.registry import services
from transcell.wsgi.app import context_of, empty_response, json_response, read_json

compute_api = API()


def _list(req: webob.Request, show_detail: bool) -> webob.Response:
    ctx = context_of(req)
    policy.authorize(ctx, "os_compute_api:servers:detail" if show_detail
                     else "os_compute_api:servers:index", {"project_id": ctx.project_id})
    listing = server_listing.parse(req, show_detail)
    servers = [] if listing.empty else compute_api.list(
        ctx, listing.db_filters, listing.limit, listing.marker,
        cell_down_support=listing.cell_down_support, sort=listing.sort, checks=listing.checks)
    if show_detail:
        with_ports = _with_ports(ctx, [s["uuid"] for s in servers if s.get("unavailable")])
        view.prepare_page(req, servers)
        items = [view.unavailable(req, s, has_ports=s["uuid"] in with_ports)
                 if s.get("unavailable") else view.detail(req, s) for s in servers]
    else:
        items = [view.basic(req, s) for s in servers]
    body: dict[str, Any] = {"servers": items}
    links = collection_links(req, items, "servers/detail" if show_detail else "servers")
    if links:
        body["servers_links"] = links
    # a page of servers is the largest body this API writes
    return json_response(body, fast=True)


def _with_ports(ctx, server_ids: list[str]) -> set[str]:
    """Which of these servers have ports: for a server whose cell is down, the network
    service is the only one left to say it has security groups (one call for all)."""
    if not server_ids:
        return set()
    return {p["device_id"] for p in services.network.list_ports(ctx, device_id=server_ids)}


def index(req: webob.Request) -> webob.Response:
    return _list(req, show_detail=False)


def detail(req: webob.Request) -> webob.Response:
    return _list(req, show_detail=True)


def show(req: webob.Request, server_id: str) -> webob.Response:
    ctx = context_of(req)
    _, server = compute_api.get(ctx, server_id,
                                cell_down_support=api_version(req).matches("2.69"))
    policy.authorize(ctx, "os_compute_api:servers:show", {"project_id": server["project_id"]})
    if server.get("unavailable"):
        return json_response({"server": view.unavailable(req, server, shown=True)})
    return json_response({"server": view.detail(req, server, shown=True)})


def ips(req: webob.Request, server_id: str) -> webob.Response:
    ctx = context_of(req)
    _, server = compute_api.get(ctx, server_id)
    policy.authorize(ctx, "os_compute_api:servers:show", {"project_id": server["project_id"]})
    return json_response({"addresses": view.addresses(server, extended=False)})


def update(req: webob.Request, server_id: str) -> webob.Response:
    ctx = context_of(req)
    body = read_json(req)
    validate(schema.update(api_version(req)), body)
    _, server = compute_api.get(ctx, server_id)
    policy.authorize(ctx, "os_compute_api:servers:update", {"project_id": server["project_id"]})
    values: dict[str, Any] = {}
    fields = body["server"]
    if "name" in fields:
        values["display_name"] = fields["name"]
    if "description" in fields:
        values["display_description"] = fields["description"]
    for api_key, column in (("accessIPv4", "access_ip_v4"), ("accessIPv6", "access_ip_v6")):
        if api_key in fields:
            values[column] = access_ip(api_key, fields[api_key])
    if "OS-DCF:diskConfig" in fields:
        values["auto_disk_config"] = fields["OS-DCF:diskConfig"] == "AUTO"
    if "hostname" in fields:  # 2.90
        values["hostname"] = fields["hostname"]
    server = compute_api.update(ctx, server_id, **values)
    return json_response({"server": view.detail(req, server, updated=True)})


def access_ip(field: str, value: str | None) -> str | None:
    """An access address in its canonical spelling, as Nova keeps it: an IPv6 address
    given long (``0000:...:babe:220.12.22.2``) is stored and shown compressed."""
    if not value:
        return None
    version = 6 if field == "accessIPv6" else 4
    try:
        address = ipaddress.ip_address(value.strip())
    except ValueError:
        address = None
    if address is None or address.version != version:
        raise exception.ValidationError(field=field,
                                        reason=f"{value!r} is not an IPv{version} address.")
    return address.compressed


def delete(req: webob.Request, server_id: str) -> webob.Response:
    ctx = context_of(req)
    _, server = compute_api.get(ctx, server_id)
    policy.authorize(ctx, "os_compute_api:servers:delete", {"project_id": server["project_id"]})
    compute_api.delete(ctx, server_id)
    return empty_response(204)


# create ---------------------------------------------------------------------

def _flavor(flavor_ref: str) -> dict:
    flavorid = str(flavor_ref).rstrip("/").rsplit("/", 1)[-1]
    with api_session() as s:
        row = s.scalar(select(am.Flavor).where(am.Flavor.flavorid == flavorid))
        if row is None or row.disabled:
            raise exception.Invalid(f"Flavor {flavor_ref} could not be found; check "
                                    "flavorRef.")
        # the server keeps this full copy, so it outlives the flavor
        return flavor_to_dict(row)


def _with_image_mappings(ctx, image_ref: str, mappings: list[dict]) -> list[dict]:
    """The request's mappings merged with those its image carries (an image made by
    createImage of a volume-backed server maps a snapshot of each volume), as Nova.

    An imageRef that cannot be read beside a request that boots from its own
    volume changes nothing (the image is not what boots there).
    """
    if not image_ref:
        return mappings
    try:
        image = _image(ctx, image_ref)
    except exception.Invalid:
        boot = volumes.boot_disk(mappings)
        if boot is not None and boot["destination_type"] == "volume":
            return mappings
        raise
    defined = volumes.image_mappings(image)
    return volumes.merge_image_mappings(defined, mappings) if defined else mappings


def _image(ctx, image_ref: str) -> dict:
    image_id = str(image_ref).rstrip("/").rsplit("/", 1)[-1]
    try:
        uuidlib.UUID(image_id)
    except ValueError as exc:
        raise exception.Invalid(f"Invalid imageRef provided: {image_ref!r} is not an image "
                                "id.") from exc
    try:
        image = services.image.get(ctx, image_id)
    except exception.ImageNotFound as exc:
        raise exception.Invalid(f"Can not find requested image {image_id}; check "
                                "imageRef.") from exc
    if image.get("status") != "active":
        raise exception.Invalid(f"Image {image_id} is not active.")
    return image


def _check_port(ctx, port_id: str) -> None:
    """A requested port must be one the caller sees, of the server's project, and free.

    Checked before the 202, as Nova does: a build accepted on a port it can
    never bind would only end in ERROR (or take another project's address).
    """
    found = services.network.list_ports(ctx, id=port_id)
    if not found:
        raise exception.Invalid(f"Port id {port_id} could not be found.")
    port = found[0]
    if port.get("project_id") != ctx.project_id:
        raise exception.Invalid(f"Port {port_id} is not usable for the instance: it belongs "
                                "to another project.")
    if port.get("device_id"):
        raise exception.Conflict(f"Port {port_id} is still in use.")


def _networks(ctx, requested: Any) -> Any:
    if requested in ("auto", "none"):
        return requested
    result = []
    for entry in requested:
        if "port" in entry and entry["port"]:
            _check_port(ctx, entry["port"])
            result.append({"port": entry["port"], "tag": entry.get("tag")})
            continue
        net_id = entry.get("uuid")
        try:
            services.network.get_network(ctx, net_id)
        except exception.NotFound as exc:
            raise exception.Invalid(f"Network {net_id} could not be found.") from exc
        item = {"uuid": net_id, "tag": entry.get("tag")}
        if entry.get("fixed_ip"):
            item["fixed_ip"] = entry["fixed_ip"]
        result.append(item)
    return result


def _keypair(ctx, name: str | None) -> dict | None:
    if name is None:
        return None
    with api_session() as s:
        row = s.scalar(select(am.KeyPair).where(am.KeyPair.user_id == ctx.user_id,
                                                am.KeyPair.name == name))
        if row is None:
            raise exception.Invalid(f"Invalid key_name provided: no key pair {name!r}.")
        return {"name": row.name, "public_key": row.public_key,
                "fingerprint": row.fingerprint, "type": row.type}


def _refuse_unsupported(ctx, server: dict) -> None:
    """Requests transcell cannot honour are refused before anything is created.

    Trusted image certificates (2.63) need compute hosts that verify image
    signatures, which transcell's do not; accepting them silently would build a
    server without the guarantee its owner asked for. (A volume type, 2.67,
    is checked with the other mappings: ``volumes.check_volumes``.)
    """
    if server.get("trusted_image_certificates"):
        policy.authorize(ctx, "os_compute_api:servers:create:trusted_certs",
                         {"project_id": ctx.project_id})
        raise exception.Invalid("Image certificate validation is not supported: this cloud's "
                                "compute hosts do not verify image signatures.")


def _requested_destination(ctx, server: dict) -> tuple[str | None, str | None]:
    """2.74: the compute host and/or hypervisor an administrator builds the server on.

    Only who the ``requested_destination`` rule admits may choose; that they
    exist is checked by the compute API, and that the server fits there (and
    in the zone, if one was named too) by the scheduler, which fails the
    build with NoValidHost otherwise.
    """
    host, node = server.get("host"), server.get("hypervisor_hostname")
    if host or node:
        policy.authorize(ctx, "compute:servers:create:requested_destination",
                         {"project_id": ctx.project_id, "user_id": ctx.user_id,
                          "availability_zone": server.get("availability_zone")})
    return host or None, node or None


def create(req: webob.Request) -> webob.Response:
    ctx = context_of(req)
    version = api_version(req)
    body = read_json(req)
    validate(schema.create(version), body)
    policy.authorize(ctx, "os_compute_api:servers:create", {"project_id": ctx.project_id})
    server = body["server"]
    _refuse_unsupported(ctx, server)
    requested_host, requested_node = _requested_destination(ctx, server)
    count = multiple_create.counts(server)
    if "hostname" in server and count.maximum > 1:
        # one hostname for several guests would clash on the network (2.90)
        raise exception.Invalid("Cannot use the hostname parameter when creating more "
                                "than one server (min_count or max_count above 1).")
    group = multiple_create.group_hint(ctx, body)
    placement = multiple_create.placement_hints(body)
    multiple_create.check_metadata(ctx, server)
    multiple_create.check_personality(ctx, server)
    security_groups = multiple_create.check_security_groups(ctx, server)
    mappings = volumes.normalize(server.get("block_device_mapping_v2") or [])
    image_ref = server.get("imageRef") or ""
    mappings = _with_image_mappings(ctx, image_ref, mappings)
    if count.maximum > 1 and any(m.get("source_type") == "volume" for m in mappings):
        raise exception.Invalid("Cannot attach one or more volumes to multiple instances")
    boot = volumes.boot_disk(mappings)
    volume_backed = boot is not None and boot["destination_type"] == "volume"
    if boot is not None and not volume_backed:
        if image_ref and boot["image_id"] != image_ref.rstrip("/").rsplit("/", 1)[-1]:
            raise exception.Invalid("The image in block_device_mapping_v2 differs from "
                                    "imageRef.")
        image_ref = boot["image_id"]
    if boot is None and not image_ref:
        raise volumes.InvalidBDM(reason="Boot sequence for the instance and image/block "
                                        "device mapping combination is not valid: there is "
                                        "no imageRef and no boot device (boot_index 0).")
    volume_cells = volumes.check_volumes(ctx, mappings, lambda iid: _image(ctx, iid))
    flavor = _flavor(server["flavorRef"])
    multiple_create.flavor_usable(ctx, flavor)
    if volume_backed:
        # the image, if any, lives in the boot volume; the server shows none of its own
        image = _image(ctx, boot["image_id"]) if boot["source_type"] == "image" else {"id": ""}
    else:
        image = _image(ctx, image_ref)
        multiple_create.image_fits(image, flavor)
        min_disk = int(image.get("min_disk") or 0)
        if flavor["root_gb"] and min_disk > flavor["root_gb"]:
            raise exception.Invalid(f"Flavor's disk is too small for requested image: image "
                                    f"needs {min_disk} GB, flavor has {flavor['root_gb']} GB.")
        size_gb = -(-int(image.get("size") or 0) // 1024 ** 3)
        if flavor["root_gb"] and size_gb > flavor["root_gb"]:
            raise exception.Invalid("Flavor's disk is too small for requested image.")
    networks = server.get("networks", "auto" if not version.matches("2.37") else None)
    if networks is None:
        networks = "auto"
    multiple_create.check_ports(networks, count.maximum)
    requested_networks = _networks(ctx, networks)
    number = multiple_create.how_many(ctx, flavor, count)
    if group is not None:
        groups.check_members_quota(group, number)
    reservation = multiple_create.reservation_id()
    made = [compute_api.create(
        ctx, name=name, flavor=flavor, image=image,
        requested_networks=requested_networks, key_pair=_keypair(ctx, server.get("key_name")),
        metadata=server.get("metadata"), tags=server.get("tags"),
        availability_zone=server.get("availability_zone"),
        description=server.get("description"),
        access_ip_v4=access_ip("accessIPv4", server.get("accessIPv4")),
        access_ip_v6=access_ip("accessIPv6", server.get("accessIPv6")),
        config_drive=str(server.get("config_drive", "")).lower() in ("true", "1"),
        auto_disk_config=server.get("OS-DCF:diskConfig") == "AUTO",
        bdms=mappings, volume_backed=volume_backed, volume_cells=volume_cells,
        requested_host=requested_host, requested_node=requested_node,
        reservation_id=reservation, group=group,
        hints=placement, hostname=server.get("hostname"), security_groups=security_groups)
        for name in multiple_create.names(server["name"], number)]
    created = made[0]
    if common.is_true(server.get("return_reservation_id", False)):
        return json_response({"reservation_id": reservation}, status=202)
    result = {"id": created["uuid"], "links": view.links(req, "servers", created["uuid"]),
              "OS-DCF:diskConfig": "AUTO" if server.get("OS-DCF:diskConfig") == "AUTO"
              else "MANUAL",
              # the groups its ports are built with, as its views show them later
              "security_groups": [{"name": g["name"]} for g in security_groups]
              or [{"name": "default"}],
              "adminPass": server.get("adminPass") or secrets.token_urlsafe(9)}
    location = result["links"][0]["href"]
    return json_response({"server": result}, status=202, headers={"Location": location})
