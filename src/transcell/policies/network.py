"""Network API (Neutron v2.0) policy defaults, under Neutron's own rule names.

Neutron's secure-RBAC defaults: readers see their project's networks, subnets,
ports and security groups (and shared or external networks), members act on
their project's, the owner of a network may manage subnets on it and ports
plugged into it, and an administrator may do everything. Where a port is
plugged in (``binding:*``), a change of its MAC address, and a ``device_owner`` naming a
network or compute device are for administrators and the ``service`` role
that compute hosts and the conductor carry: a user who could set them could
move or hijack a server's port. Routers and subnet pools follow the same
project rules (members add and remove a router's interfaces); a shared subnet
pool is readable by everyone, and sharing one or making it the default is for
administrators.
"""

from __future__ import annotations

from oslo_policy import policy as oslo_policy

ADMIN = "rule:admin_api"
ADMIN_OR_SERVICE = "rule:admin_or_service"
PROJECT_MEMBER = "role:member and project_id:%(project_id)s"
PROJECT_READER = "role:reader and project_id:%(project_id)s"
NET_OWNER_MEMBER = "role:member and project_id:%(network:project_id)s"
NET_OWNER_READER = "role:reader and project_id:%(network:project_id)s"
SHARED = "'True':%(network:shared)s"
EXTERNAL = "'True':%(network:router:external)s"
ADMIN_OR_MEMBER = f"{ADMIN_OR_SERVICE} or ({PROJECT_MEMBER})"
ADMIN_OR_READER = f"{ADMIN_OR_SERVICE} or ({PROJECT_READER})"
ADMIN_OR_NET_OWNER_MEMBER = f"{ADMIN_OR_SERVICE} or ({NET_OWNER_MEMBER})"

#: device_owner prefixes only the network and compute services themselves set
RESERVED_OWNERS = ("network:", "compute:")

_Rule = tuple[str, str, str, list[tuple[str, str]]]


def _crud(member: str, collection: str, read: str, create: str, write: str) -> list[_Rule]:
    many, one = f"/{collection}", f"/{collection}/{{id}}"
    return [
        (f"create_{member}", create, f"Create a {member}.", [("POST", many)]),
        (f"get_{member}", read, f"List {collection} or show a {member}.",
         [("GET", many), ("GET", one)]),
        (f"update_{member}", write, f"Update a {member}.", [("PUT", one)]),
        (f"delete_{member}", write, f"Delete a {member}.", [("DELETE", one)]),
    ]


def _tags(member: str, collection: str, read: str, write: str) -> list[_Rule]:
    tags = f"/{collection}/{{resource_id}}/tags"
    return [
        (f"get_{member}:tags", read, f"List or check the tags of a {member}.",
         [("GET", tags), ("GET", tags + "/{tag}")]),
        (f"create_{member}:tags", write, f"Add a tag to a {member}.",
         [("PUT", tags + "/{tag}")]),
        (f"update_{member}:tags", write, f"Replace the tags of a {member}.",
         [("PUT", tags)]),
        (f"delete_{member}:tags", write, f"Remove tags from a {member}.",
         [("DELETE", tags), ("DELETE", tags + "/{tag}")]),
    ]


def _attribute(action: str, attribute: str, check: str, why: str, path: str) -> _Rule:
    method = "POST" if action == "create" else "PUT"
    return (f"{action}_{attribute}", check, why, [(method, path)])


_NETWORK_READ = f"{ADMIN_OR_READER} or {SHARED} or {EXTERNAL}"
_SUBNET_READ = f"{_NETWORK_READ} or ({NET_OWNER_READER})"
_PORT_READ = f"{ADMIN_OR_READER} or ({NET_OWNER_READER})"
_PORT_DELETE = f"{ADMIN_OR_MEMBER} or ({NET_OWNER_MEMBER})"
_SG_READ = ADMIN_OR_READER
_SUBNETPOOL_READ = f"{ADMIN_OR_READER} or 'True':%(shared)s"

_RULES: list[_Rule] = [
    *_crud("network", "networks", _NETWORK_READ, ADMIN_OR_MEMBER, ADMIN_OR_MEMBER),
    *[_attribute(verb, f"network:{attr}", ADMIN,
                 f"Set ``{attr}`` when {'creating' if verb == 'create' else 'updating'} "
                 "a network.", "/networks" if verb == "create" else "/networks/{id}")
      for verb in ("create", "update") for attr in ("shared", "router:external")],
    ("get_network:segments", ADMIN,
     "See a network's segments (segments, provider:network_type, provider:physical_network, "
     "provider:segmentation_id).", [("GET", "/networks"), ("GET", "/networks/{id}")]),
    *_crud("subnet", "subnets", _SUBNET_READ, ADMIN_OR_NET_OWNER_MEMBER,
           ADMIN_OR_NET_OWNER_MEMBER),
    *[_attribute(verb, "subnet:segment_id", ADMIN,
                 f"Put a subnet on a segment when {'creating' if verb == 'create' else 'updating'}"
                 " it.", "/subnets" if verb == "create" else "/subnets/{id}")
      for verb in ("create", "update")],
    *_crud("segment", "segments", ADMIN, ADMIN, ADMIN),
    *[_attribute(verb, "segment:transcell:cells", ADMIN,
                 f"Set the cells a segment reaches when "
                 f"{'creating' if verb == 'create' else 'updating'} it.",
                 "/segments" if verb == "create" else "/segments/{id}")
      for verb in ("create", "update")],
    *_crud("port", "ports", _PORT_READ, ADMIN_OR_MEMBER, ADMIN_OR_MEMBER),
    ("delete_port", _PORT_DELETE, "Delete a port (its project's or on the caller's network).",
     [("DELETE", "/ports/{id}")]),
    *[_attribute(verb, f"port:{attr}", ADMIN_OR_SERVICE,
                 f"Set ``{attr}`` when {'creating' if verb == 'create' else 'updating'} "
                 "a port.", "/ports" if verb == "create" else "/ports/{id}")
      for verb in ("create", "update")
      for attr in ("binding:host_id", "binding:profile", "mac_address",
                   "transcell:created_for_instance", "transcell:vif_tag",
                   "transcell:vif_index")
      if (verb, attr) != ("create", "mac_address")],
    # Neutron's default: the network's owner picks a new port's MAC (unique on its
    # network); changing an existing port's MAC stays with administrators
    _attribute("create", "port:mac_address", ADMIN_OR_NET_OWNER_MEMBER,
               "Set ``mac_address`` when creating a port.", "/ports"),
    *[_attribute(verb, "port:device_owner", ADMIN_OR_SERVICE,
                 f"{'Create' if verb == 'create' else 'Update'} a port whose device_owner "
                 f"is or was a network or compute device ({', '.join(RESERVED_OWNERS)}).",
                 "/ports" if verb == "create" else "/ports/{id}")
      for verb in ("create", "update")],
    ("get_port:binding:host_id", ADMIN_OR_SERVICE,
     "See where a port is plugged in (binding:host_id, binding:profile, vif details).",
     [("GET", "/ports"), ("GET", "/ports/{id}")]),
    ("get_port_binding", ADMIN_OR_SERVICE, "List or show a port's bindings.",
     [("GET", "/ports/{port_id}/bindings"), ("GET", "/ports/{port_id}/bindings/{host}")]),
    ("create_port_binding", ADMIN_OR_SERVICE, "Bind a port to another host.",
     [("POST", "/ports/{port_id}/bindings")]),
    ("activate", ADMIN_OR_SERVICE, "Make a port's binding on a host the active one.",
     [("PUT", "/ports/{port_id}/bindings/{host}/activate")]),
    ("delete_port_binding", ADMIN_OR_SERVICE, "Delete a port's binding on a host.",
     [("DELETE", "/ports/{port_id}/bindings/{host}")]),
    ("check_ports_for_host", ADMIN_OR_SERVICE,
     "Check whether ports work on a host of another cell (a move's plan).",
     [("POST", "/transcell/port-host-checks")]),
    ("readdress_port", ADMIN_OR_SERVICE,
     "Give a port an address on a segment of its new host's cell (a move).",
     [("PUT", "/ports/{port_id}/readdress")]),
    ("restore_port_addresses", ADMIN_OR_SERVICE,
     "Put back the addresses a re-addressing replaced (a reverted move).",
     [("PUT", "/ports/{port_id}/restore_addresses")]),
    *_crud("security_group", "security-groups", _SG_READ, ADMIN_OR_MEMBER, ADMIN_OR_MEMBER),
    *[(name.replace("security_group", "security_group_rule"), check,
       description.replace("group", "group rule"),
       [(method, path.replace("security-groups", "security-group-rules"))
        for method, path in operations])
      for name, check, description, operations
      in _crud("security_group", "security-groups", _SG_READ, ADMIN_OR_MEMBER,
               ADMIN_OR_MEMBER) if not name.startswith("update")],
    *_crud("router", "routers", ADMIN_OR_READER, ADMIN_OR_MEMBER, ADMIN_OR_MEMBER),
    ("add_router_interface", ADMIN_OR_MEMBER, "Add an interface (a subnet or a port) to a "
     "router.", [("PUT", "/routers/{router_id}/add_router_interface")]),
    ("remove_router_interface", ADMIN_OR_MEMBER, "Remove an interface from a router.",
     [("PUT", "/routers/{router_id}/remove_router_interface")]),
    *_crud("subnetpool", "subnetpools", _SUBNETPOOL_READ, ADMIN_OR_MEMBER, ADMIN_OR_MEMBER),
    *[_attribute(verb, f"subnetpool:{attr}", ADMIN,
                 f"Set ``{attr}`` when {'creating' if verb == 'create' else 'updating'} "
                 "a subnet pool.", "/subnetpools" if verb == "create" else "/subnetpools/{id}")
      for verb in ("create", "update") for attr in ("shared", "is_default")],
    *_tags("network", "networks", _NETWORK_READ, ADMIN_OR_MEMBER),
    *_tags("router", "routers", ADMIN_OR_READER, ADMIN_OR_MEMBER),
    *_tags("subnetpool", "subnetpools", _SUBNETPOOL_READ, ADMIN_OR_MEMBER),
    *_tags("security_group", "security-groups", _SG_READ, ADMIN_OR_MEMBER),
    *_tags("segment", "segments", ADMIN, ADMIN),
    *_tags("subnet", "subnets", _SUBNET_READ, ADMIN_OR_NET_OWNER_MEMBER),
    *_tags("port", "ports", _PORT_READ, ADMIN_OR_MEMBER),
]


def list_rules() -> list[oslo_policy.RuleDefault]:
    seen: dict[str, _Rule] = {}
    for rule in _RULES:
        seen[rule[0]] = rule  # a later entry refines an earlier one (delete_port)
    return [oslo_policy.DocumentedRuleDefault(
        name, check, description,
        [{"method": method, "path": "/v2.0" + path} for method, path in operations],
        scope_types=["project"]) for name, check, description, operations in seen.values()]
