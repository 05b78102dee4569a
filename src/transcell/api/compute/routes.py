"""The compute API's one route table: every URL and method it serves, on one screen."""

from __future__ import annotations

from transcell.api.compute import (
    aggregates,
    availability_zones,
    flavor_extra_specs,
    flavors,
    hypervisors,
    instance_actions,
    keypairs,
    limits,
    migrations,
    server_actions,
    server_tags,
    servers,
    services,
    versions,
)

V = "/v2.1"

ROUTES = {
    "/": {"GET": versions.index},
    V: {"GET": versions.show},
    # flavors
    f"{V}/flavors": {"GET": flavors.index, "POST": flavors.create},
    f"{V}/flavors/detail": {"GET": flavors.detail},
    f"{V}/flavors/{{flavor_id}}": {"GET": flavors.show, "PUT": flavors.update,
                                   "DELETE": flavors.delete},
    f"{V}/flavors/{{flavor_id}}/os-extra_specs": {"GET": flavor_extra_specs.index,
                                                  "POST": flavor_extra_specs.create},
    f"{V}/flavors/{{flavor_id}}/os-extra_specs/{{key}}": {"GET": flavor_extra_specs.show,
                                                          "PUT": flavor_extra_specs.update,
                                                          "DELETE": flavor_extra_specs.delete},
    # servers
    f"{V}/servers": {"GET": servers.index, "POST": servers.create},
    f"{V}/servers/detail": {"GET": servers.detail},
    f"{V}/servers/{{server_id}}": {"GET": servers.show, "PUT": servers.update,
                                   "DELETE": servers.delete},
    f"{V}/servers/{{server_id}}/action": {"POST": server_actions.action},
    f"{V}/servers/{{server_id}}/ips": {"GET": servers.ips},
    f"{V}/servers/{{server_id}}/tags": {"GET": server_tags.index, "PUT": server_tags.update_all,
                                        "DELETE": server_tags.delete_all},
    f"{V}/servers/{{server_id}}/tags/{{tag}}": {"GET": server_tags.show,
                                                "PUT": server_tags.update,
                                                "DELETE": server_tags.delete},
    f"{V}/servers/{{server_id}}/os-instance-actions": {"GET": instance_actions.index},
    f"{V}/servers/{{server_id}}/os-instance-actions/{{request_id}}": {
        "GET": instance_actions.show},
    # keypairs
    f"{V}/os-keypairs": {"GET": keypairs.index, "POST": keypairs.create},
    f"{V}/os-keypairs/{{name}}": {"GET": keypairs.show, "DELETE": keypairs.delete},
    # operators
    f"{V}/os-hypervisors": {"GET": hypervisors.index},
    f"{V}/os-hypervisors/detail": {"GET": hypervisors.detail},
    f"{V}/os-hypervisors/statistics": {"GET": hypervisors.statistics},
    f"{V}/os-hypervisors/{{hypervisor_id}}": {"GET": hypervisors.show},
    f"{V}/os-services": {"GET": services.index},
    f"{V}/os-services/{{service_id}}": {"PUT": services.update, "DELETE": services.delete},
    f"{V}/os-aggregates": {"GET": aggregates.index, "POST": aggregates.create},
    f"{V}/os-aggregates/{{aggregate_id}}": {"GET": aggregates.show, "PUT": aggregates.update,
                                            "DELETE": aggregates.delete},
    f"{V}/os-aggregates/{{aggregate_id}}/action": {"POST": aggregates.action},
    f"{V}/os-aggregates/{{aggregate_id}}/images": {"POST": aggregates.images},
    f"{V}/os-availability-zone": {"GET": availability_zones.index},
    f"{V}/os-availability-zone/detail": {"GET": availability_zones.detail},
    f"{V}/limits": {"GET": limits.index},
    f"{V}/os-migrations": {"GET": migrations.index},
}
