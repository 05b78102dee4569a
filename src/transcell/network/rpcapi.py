"""How compute hosts and the conductor reach the global network service: over the bus."""

from __future__ import annotations

from typing import Any

from transcell.context import RequestContext

TOPIC = "network"


class NetworkAPI:
    def __init__(self, bus):
        self.bus = bus

    def allocate_for_instance(self, ctx: RequestContext, instance_uuid: str, project_id: str,
                              requested_networks: Any, host: str) -> list[dict]:
        return self.bus.call(ctx, TOPIC, "allocate_for_instance", instance_uuid=instance_uuid,
                             project_id=project_id, requested_networks=requested_networks,
                             host=host)

    def deallocate_for_instance(self, ctx: RequestContext, instance_uuid: str,
                                vifs: list[dict] | None = None) -> None:
        self.bus.call(ctx, TOPIC, "deallocate_for_instance", instance_uuid=instance_uuid,
                      vifs=vifs)

    def get_network(self, ctx: RequestContext, network_id: str) -> dict:
        return self.bus.call(ctx, TOPIC, "get_network", network_id=network_id)

    def list_ports(self, ctx: RequestContext, **filters: Any) -> list[dict]:
        return self.bus.call(ctx, TOPIC, "list_ports", filters=filters)

    # port bindings, for moves: a port keeps its id and addresses, only its host changes
    def list_bindings(self, ctx: RequestContext, port_id: str) -> list[dict]:
        return self.bus.call(ctx, TOPIC, "list_bindings", port_id=port_id)

    def create_binding(self, ctx: RequestContext, port_id: str, host: str) -> dict:
        return self.bus.call(ctx, TOPIC, "create_binding", port_id=port_id, host=host,
                             active=False)

    def activate_binding(self, ctx: RequestContext, port_id: str, host: str) -> dict:
        return self.bus.call(ctx, TOPIC, "activate_binding", port_id=port_id, host=host)

    def delete_binding(self, ctx: RequestContext, port_id: str, host: str) -> None:
        self.bus.call(ctx, TOPIC, "delete_binding", port_id=port_id, host=host)
