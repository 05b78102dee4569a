"""/servers: create, list, show, rename and delete servers."""

from __future__ import annotations

import secrets
import uuid as uuidlib
from typing import Any

import webob
from sqlalchemy import select

from transcell import exception, policy
from transcell.api.compute import server_listing
from transcell.api.compute.app import api_version
from transcell.api.compute.common import collection_links, validate
from transcell.api.compute.flavors import flavor_to_dict
from transcell.api.compute.schemas import servers as schema
from transcell.api.compute.views import servers as view
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
    servers = listing.apply(compute_api.list(ctx, listing.db_filters, None, None,
                                             cell_down_support=listing.cell_down_support))
    if show_detail:
        with_ports = _with_ports(ctx, [s["uuid"] for s in servers if s.get("unavailable")])
        items = [view.unavailable(req, s, has_ports=s["uuid"] in with_ports)
                 if s.get("unavailable") else view.detail(req, s) for s in servers]
    else:
        items = [view.basic(req, s) for s in servers]
    body: dict[str, Any] = {"servers": items}
    links = collection_links(req, items, "servers/detail" if show_detail else "servers")
    if links:
        body["servers_links"] = links
    return json_response(body)


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
            values[column] = fields[api_key] or None
    server = compute_api.update(ctx, server_id, **values)
    return json_response({"server": view.detail(req, server, updated=True)})


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


def _image_from_bdms(bdms: list[dict]) -> str | None:
    for bdm in bdms:
        if bdm.get("boot_index") in (0, "0") and bdm.get("source_type") == "image":
            if bdm.get("destination_type", "local") != "local":
                raise exception.Invalid("Booting from volume is not supported yet; use an "
                                        "image BDM with destination_type local.")
            return bdm.get("uuid")
        if bdm.get("boot_index") in (0, "0"):
            raise exception.Invalid("Only image-backed servers are supported: the boot "
                                    "device must have source_type image.")
    return None


def _refuse_unsupported(ctx, server: dict) -> None:
    """Requests transcell cannot honour are refused before anything is created.

    Trusted image certificates (2.63) need compute hosts that verify image
    signatures, and a volume type (2.67) needs a block storage service;
    transcell has neither, and accepting either silently would build a server
    without the guarantee its owner asked for.
    """
    if server.get("trusted_image_certificates"):
        policy.authorize(ctx, "os_compute_api:servers:create:trusted_certs",
                         {"project_id": ctx.project_id})
        raise exception.Invalid("Image certificate validation is not supported: this cloud's "
                                "compute hosts do not verify image signatures.")
    for bdm in server.get("block_device_mapping_v2") or []:
        if bdm.get("volume_type"):
            raise exception.Invalid(f"Volume type {bdm['volume_type']} could not be found.")


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
    if server.get("min_count", 1) != 1 or server.get("max_count", 1) != 1:
        raise exception.Invalid("Creating several servers in one request is not supported; "
                                "set min_count and max_count to 1.")
    bdms = server.get("block_device_mapping_v2") or []
    image_ref = server.get("imageRef") or _image_from_bdms(bdms)
    bdm_image = _image_from_bdms(bdms)
    if bdm_image and server.get("imageRef") and bdm_image != image_ref.rsplit("/", 1)[-1]:
        raise exception.Invalid("The image in block_device_mapping_v2 differs from imageRef.")
    if not image_ref:
        raise exception.Invalid("Missing imageRef attribute; an image is required.")
    flavor = _flavor(server["flavorRef"])
    image = _image(ctx, image_ref)
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
    requested_networks = _networks(ctx, networks)
    created = compute_api.create(
        ctx, name=server["name"], flavor=flavor, image=image,
        requested_networks=requested_networks, key_pair=_keypair(ctx, server.get("key_name")),
        metadata=server.get("metadata"), tags=server.get("tags"),
        availability_zone=server.get("availability_zone"),
        description=server.get("description"), access_ip_v4=server.get("accessIPv4"),
        access_ip_v6=server.get("accessIPv6"),
        config_drive=str(server.get("config_drive", "")).lower() in ("true", "1"),
        auto_disk_config=server.get("OS-DCF:diskConfig") == "AUTO",
        bdms=[b for b in bdms if b.get("source_type") == "image"],
        requested_host=requested_host, requested_node=requested_node)
    result = {"id": created["uuid"], "links": view.links(req, "servers", created["uuid"]),
              "OS-DCF:diskConfig": "AUTO" if server.get("OS-DCF:diskConfig") == "AUTO"
              else "MANUAL",
              "security_groups": [{"name": "default"}],
              "adminPass": server.get("adminPass") or secrets.token_urlsafe(9)}
    location = result["links"][0]["href"]
    return json_response({"server": result}, status=202, headers={"Location": location})
