"""Discovery: the version document, the v2.0 resource index and the extensions.

Clients (keystoneauth, openstacksdk) read the version document without a token
and follow its absolute ``self`` link, and check extension aliases before using
a feature: Nova's cross-cell move, for one, requires "binding-extended".
"""

from __future__ import annotations

import webob

from transcell.network.exceptions import ExtensionNotFound
from transcell.wsgi.app import application_url, json_response

UPDATED = "2025-01-01T00:00:00-00:00"

EXTENSIONS = {
    "binding": ("Port Binding", "Expose port bindings of a virtual port to external "
                                "application"),
    "binding-extended": ("Port Bindings Extended", "Expose port bindings of a virtual "
                                                   "port to external application"),
    "port-security": ("Port Security", "Provides port security"),
    "security-group": ("security-group", "The security groups extension."),
    # the older alias, tags on networks, which standard-attr-tag includes
    "tag": ("Tag support", "Enables to set tag on resources."),
    "standard-attr-tag": ("Tag support for resources with standard attribute",
                          "Enables to set tag on resources with standard attribute."),
    "standard-attr-description": ("standard-attr-description",
                                  "Extension to add descriptions to standard attributes"),
    "standard-attr-timestamp": ("Resource timestamps",
                                "Adds created_at and updated_at fields to all Neutron "
                                "resources that have Neutron standard attributes."),
    "standard-attr-revisions": ("Resource revision numbers",
                                "This extension will display the revision number of "
                                "neutron resources."),
    "router": ("Neutron L3 Router",
               "Router abstraction for routing between subnets (records only: interfaces "
               "are ports; no packets are forwarded)."),
    "subnet_allocation": ("Subnet Allocation",
                          "Subnet pools (records only: subnets are not allocated from "
                          "them)."),
    "external-net": ("Neutron external network", "Adds external network attribute to "
                                                 "network resource."),
    "net-mtu": ("Network MTU", "Provides MTU attribute for a network resource."),
    "project-id": ("project_id field enabled", "Extension that indicates that project_id "
                                               "field is enabled."),
    "revision-if-match": ("If-Match constraints based on revision_number",
                          "Extension indicating that If-Match based on revision_number "
                          "is supported."),
    "segment": ("Segment", "Segments of a network; subnets on a segment serve the hosts it "
                           "reaches."),
    "ip_allocation": ("IP Allocation", "Shows whether a port's address is given at creation "
                                       "(immediate) or when it is bound (deferred)."),
    "l2_adjacency": ("L2 Adjacency", "Shows whether all the network's ports share one "
                                     "layer 2 domain."),
    "transcell-segment-cells": ("transcell segment cells",
                                "A segment reaches the hosts of the cells in its "
                                "transcell:cells (administrators only)."),
    "transcell-port-moves": ("transcell port moves",
                             "Administrators and services check whether ports work on a "
                             "host (POST /v2.0/transcell/port-host-checks), give a port an "
                             "address in its new host's cell (PUT /v2.0/ports/{id}/readdress) "
                             "and put its old addresses back "
                             "(PUT /v2.0/ports/{id}/restore_addresses)."),
    "transcell-vif": ("transcell server ports",
                      "Administrators and services record on a port whether it was "
                      "created for its server (transcell:created_for_instance), its device "
                      "tag and position (transcell:vif_tag, transcell:vif_index), and may "
                      "create a port binding with an explicit initial status."),
}

RESOURCES = (("network", "networks"), ("subnet", "subnets"), ("port", "ports"),
             ("segment", "segments"), ("security_group", "security-groups"),
             ("security_group_rule", "security-group-rules"), ("router", "routers"),
             ("subnetpool", "subnetpools"))


def root(req: webob.Request) -> webob.Response:
    href = f"{application_url(req)}/v2.0/"
    return json_response({"versions": [
        {"id": "v2.0", "status": "CURRENT", "links": [{"rel": "self", "href": href}]},
    ]})


def v2_index(req: webob.Request) -> webob.Response:
    base = f"{application_url(req)}/v2.0"
    return json_response({"resources": [
        {"name": name, "collection": collection,
         "links": [{"rel": "self", "href": f"{base}/{collection}"}]}
        for name, collection in RESOURCES
    ]})


def _extension(alias: str) -> dict[str, object]:
    name, description = EXTENSIONS[alias]
    return {"alias": alias, "name": name, "description": description,
            "updated": UPDATED, "links": []}


def extensions(req: webob.Request) -> webob.Response:
    return json_response({"extensions": [_extension(alias) for alias in EXTENSIONS]})


def extension(req: webob.Request, alias: str) -> webob.Response:
    if alias not in EXTENSIONS:
        raise ExtensionNotFound(alias=alias)
    return json_response({"extension": _extension(alias)})
