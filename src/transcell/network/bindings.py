"""Port bindings: which host a port is plugged into, and where it will be next.

A port has at most one ACTIVE binding. A cross-cell move first creates an
INACTIVE binding on the target host (checking the port can be bound there
before anything is destroyed), activates it when the server comes up on the
target (the source binding turns INACTIVE, kept for a revert), and deletes the
binding it no longer needs when the move is confirmed or reverted.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from transcell import exception
from transcell.context import RequestContext
from transcell.db.session import session_for
from transcell.network import exceptions as exc
from transcell.network import routing, scope, views
from transcell.network.cells import CellDirectory
from transcell.network.models import ACTIVE, DOWN, INACTIVE, Network, Port, PortBinding

VIF_TYPE = "ovs"
VIF_DETAILS = {"port_filter": True, "connectivity": "l2"}
COMPUTE_PREFIX = "compute:"


def find(port: Port, host: str) -> PortBinding | None:
    for binding in port.bindings:
        if binding.host == host:
            return binding
    return None


def _new(port: Port, host: str, status: str, vnic_type: str | None,
         profile: dict[str, Any] | None) -> PortBinding:
    if not host:
        raise exception.Invalid("Invalid input for host. Reason: a host name is required.")
    binding = PortBinding(host=host, status=status, vif_type=VIF_TYPE,
                          vif_details=dict(VIF_DETAILS),
                          vnic_type=vnic_type or port.vnic_type,
                          profile=dict(profile if profile is not None else port.binding_profile))
    port.bindings.append(binding)
    return binding


def _activate(port: Port, target: PortBinding) -> None:
    for binding in port.bindings:
        if binding is not target and binding.status == ACTIVE:
            binding.status = INACTIVE
    target.status = ACTIVE
    port.status = ACTIVE


def plug(session: Session, port: Port, host: str, vnic_type: str | None = None,
         profile: dict[str, Any] | None = None) -> PortBinding:
    """Make ``host`` the port's active binding, replacing the one active elsewhere."""
    active = port.active_binding()
    if active is not None and active.host != host:
        port.bindings.remove(active)
        session.flush()
    target = find(port, host)
    if target is None:
        target = _new(port, host, ACTIVE, vnic_type, profile)
    else:
        if vnic_type is not None:
            target.vnic_type = vnic_type
        if profile is not None:
            target.profile = dict(profile)
    _activate(port, target)
    return target


def unplug(session: Session, port: Port) -> None:
    active = port.active_binding()
    if active is not None:
        port.bindings.remove(active)
        session.flush()
    port.status = DOWN


class Bindings:
    db_url: str
    cells: CellDirectory

    def _place(self, session: Session, port: Port, host: str, allocate: bool = True) -> None:
        net = session.get(Network, port.network_id)
        if net is not None:
            routing.place(session, self.cells, port, net, host, allocate=allocate)

    def _locked_port(self, session: Session, ctx: RequestContext, port_id: str,
                     action: str) -> Port:
        scope.require_admin(ctx, action)
        scope.lock_port(session, port_id)
        return scope.load_port(session, ctx, port_id)

    @staticmethod
    def _done(session: Session, port: Port, binding: PortBinding | None = None) -> Any:
        session.flush()
        session.refresh(port)
        return views.binding(binding) if binding is not None else views.port(port)

    def bind_port(self, ctx: RequestContext, port_id: str, host: str,
                  vnic_type: str | None = None, profile: dict[str, Any] | None = None
                  ) -> dict[str, Any]:
        """Plug the port in on ``host`` now (binding:host_id); returns the port."""
        with session_for(self.db_url) as session:
            port = self._locked_port(session, ctx, port_id, "update_port:binding:host_id")
            self._place(session, port, host)
            plug(session, port, host, vnic_type, profile)
            return self._done(session, port)

    def unbind_port(self, ctx: RequestContext, port_id: str) -> dict[str, Any]:
        with session_for(self.db_url) as session:
            port = self._locked_port(session, ctx, port_id, "update_port:binding:host_id")
            unplug(session, port)
            return self._done(session, port)

    def create_binding(self, ctx: RequestContext, port_id: str, host: str,
                       active: bool | None = False, vnic_type: str | None = None,
                       profile: dict[str, Any] | None = None) -> dict[str, Any]:
        """Add a binding for ``host``.

        ``active=None`` follows Neutron: the binding is active only when the
        port has no active binding yet. ``True`` makes it the active one at once.
        """
        with session_for(self.db_url) as session:
            port = self._locked_port(session, ctx, port_id, "create_port_binding")
            if not port.device_owner.startswith(COMPUTE_PREFIX):
                raise exc.PortBindingError(port_id=port_id, reason="it is not a compute port")
            if find(port, host) is not None:
                raise exc.PortBindingAlreadyExists(port_id=port_id, host=host)
            if active is None:
                active = port.active_binding() is None
            # an inactive binding (a move's target) checks the addresses fit the host
            # but leaves a deferred port's address to the activation
            self._place(session, port, host, allocate=bool(active))
            binding = _new(port, host, INACTIVE, vnic_type, profile)
            if active:
                _activate(port, binding)
            return self._done(session, port, binding)

    def get_binding(self, ctx: RequestContext, port_id: str, host: str) -> dict[str, Any]:
        scope.require_admin(ctx, "get_port_binding")
        with session_for(self.db_url) as session:
            port = scope.load_port(session, ctx, port_id)
            binding = find(port, host)
            if binding is None:
                raise exc.PortBindingNotFound(port_id=port_id, host=host)
            return views.binding(binding)

    def list_bindings(self, ctx: RequestContext, port_id: str) -> list[dict[str, Any]]:
        scope.require_admin(ctx, "get_port_binding")
        with session_for(self.db_url) as session:
            port = scope.load_port(session, ctx, port_id)
            return [views.binding(binding) for binding in port.bindings]

    def activate_binding(self, ctx: RequestContext, port_id: str, host: str
                         ) -> dict[str, Any]:
        """Switch the port to ``host``; the binding active until now turns INACTIVE."""
        with session_for(self.db_url) as session:
            port = self._locked_port(session, ctx, port_id, "activate")
            binding = find(port, host)
            if binding is None:
                raise exc.PortBindingNotFound(port_id=port_id, host=host)
            if binding.status == ACTIVE:
                raise exc.PortBindingAlreadyActive(port_id=port_id, host=host)
            if not routing.allocations(session, port.id):
                # a deferred port gets its address now; one that has addresses was
                # checked when the binding was made (a revert restores them after)
                self._place(session, port, host)
            _activate(port, binding)
            return self._done(session, port, binding)

    def delete_binding(self, ctx: RequestContext, port_id: str, host: str) -> None:
        with session_for(self.db_url) as session:
            port = self._locked_port(session, ctx, port_id, "delete_port_binding")
            binding = find(port, host)
            if binding is None:
                raise exc.PortBindingNotFound(port_id=port_id, host=host)
            if binding.status == ACTIVE:
                port.status = DOWN
            port.bindings.remove(binding)
