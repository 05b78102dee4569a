"""How compute hosts and the conductor reach the global network service: over the bus."""

from __future__ import annotations

from typing import Any

from transcell.context import RequestContext

TOPIC = "network"
#: what ``security_group_call`` may ask for
SECURITY_GROUP_CALLS = frozenset({
    "get_security_group", "create_security_group", "update_security_group",
    "delete_security_group", "get_security_group_rule", "create_security_group_rule",
    "delete_security_group_rule", "update_port"})


class NetworkAPI:
    VERSION = "1.0"  # what these messages are; the served side must accept it

    def __init__(self, bus):
        self.bus = bus

    def allocate_for_instance(self, ctx: RequestContext, instance_uuid: str, project_id: str,
                              requested_networks: Any, host: str) -> list[dict]:
        return self.bus.call(ctx, TOPIC, "allocate_for_instance", rpc_version=self.VERSION,
                             instance_uuid=instance_uuid,
                             project_id=project_id, requested_networks=requested_networks,
                             host=host)

    def deallocate_for_instance(self, ctx: RequestContext, instance_uuid: str,
                                vifs: list[dict] | None = None) -> None:
        self.bus.call(ctx, TOPIC, "deallocate_for_instance", rpc_version=self.VERSION,
                      instance_uuid=instance_uuid,
                      vifs=vifs)

    def get_network(self, ctx: RequestContext, network_id: str) -> dict:
        return self.bus.call(ctx, TOPIC, "get_network", rpc_version=self.VERSION,
                             network_id=network_id)

    def list_networks(self, ctx: RequestContext, **filters: Any) -> list[dict]:
        return self.bus.call(ctx, TOPIC, "list_networks", rpc_version=self.VERSION,
                             filters=filters)

    def list_ports(self, ctx: RequestContext, **filters: Any) -> list[dict]:
        return self.bus.call(ctx, TOPIC, "list_ports", rpc_version=self.VERSION, filters=filters)

    def list_security_groups(self, ctx: RequestContext, **filters: Any) -> list[dict]:
        """The security groups ``ctx`` sees (a server's create names them)."""
        return self.bus.call(ctx, TOPIC, "list_security_groups", rpc_version=self.VERSION,
                             filters=filters)

    # security groups as Nova's os-security-groups proxy and add/removeSecurityGroup use them
    def security_group_call(self, ctx: RequestContext, method: str, **kwargs: Any) -> Any:
        """``get/create/update/delete_security_group``, ``create/delete_security_group_rule``
        and ``update_port`` (a port's groups), by the network service's own names."""
        if method not in SECURITY_GROUP_CALLS:
            raise ValueError(f"not a security group call: {method}")
        return self.bus.call(ctx, TOPIC, method, rpc_version=self.VERSION, **kwargs)

    # port bindings, for moves: a port keeps its id and addresses, only its host changes
    def list_bindings(self, ctx: RequestContext, port_id: str) -> list[dict]:
        return self.bus.call(ctx, TOPIC, "list_bindings", rpc_version=self.VERSION, port_id=port_id)

    def create_binding(self, ctx: RequestContext, port_id: str, host: str) -> dict:
        return self.bus.call(ctx, TOPIC, "create_binding", rpc_version=self.VERSION,
                             port_id=port_id, host=host,
                             active=False)

    def activate_binding(self, ctx: RequestContext, port_id: str, host: str) -> dict:
        return self.bus.call(ctx, TOPIC, "activate_binding", rpc_version=self.VERSION,
                             port_id=port_id, host=host)

    def delete_binding(self, ctx: RequestContext, port_id: str, host: str) -> None:
        self.bus.call(ctx, TOPIC, "delete_binding", rpc_version=self.VERSION,
                      port_id=port_id, host=host)

    # a move's ports across cells (1.1): a segment the target cell lacks means a new
    # address there, or no move
    MOVES_VERSION = "1.1"

    def check_ports_for_host(self, ctx: RequestContext, port_ids: list[str], host: str
                             ) -> list[dict]:
        """[{"port_id", "action": "keep"|"readdress"|"blocked", "reason", "fixed_ips",
        "segment"}] for each port, in order; changes nothing."""
        return self.bus.call(ctx, TOPIC, "check_ports_for_host",
                             rpc_version=self.MOVES_VERSION, port_ids=port_ids, host=host)

    def readdress_port(self, ctx: RequestContext, port_id: str, host: str) -> dict:
        """{"port_id", "old_fixed_ips", "new_fixed_ips"}; repeating it answers the same."""
        return self.bus.call(ctx, TOPIC, "readdress_port", rpc_version=self.MOVES_VERSION,
                             port_id=port_id, host=host)

    def restore_port_addresses(self, ctx: RequestContext, port_id: str,
                               fixed_ips: list[dict]) -> dict:
        """{"port_id", "old_fixed_ips" (replaced), "new_fixed_ips" (restored)}."""
        return self.bus.call(ctx, TOPIC, "restore_port_addresses",
                             rpc_version=self.MOVES_VERSION, port_id=port_id,
                             fixed_ips=fixed_ips)
