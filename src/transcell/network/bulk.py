"""Bulk create in one transaction: every object of the request is made, or none is.

Each item goes through the same checks as a single create; what a port
create does outside its transaction (checking security groups, making the
project's default group) is done for every item first, so the one
transaction that inserts them holds no lock while another session writes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from transcell.context import RequestContext
from transcell.db.session import session_for


class BulkCreate:
    db_url: str
    # from the Networks, Subnets and Ports parts of the service
    _add_network: Callable[..., dict[str, Any]]
    _add_subnet: Callable[..., dict[str, Any]]
    _prepare_port: Callable[..., Any]
    _place_port: Callable[..., dict[str, Any]]

    def create_in_bulk(self, ctx: RequestContext, member: str, bodies: list[dict[str, Any]]
                       ) -> list[dict[str, Any]]:
        """Create ``bodies`` (networks, subnets or ports), in request order."""
        if member == "port":
            prepared = [self._prepare_port(ctx, body) for body in bodies]
            with session_for(self.db_url) as session:
                return [self._place_port(session, ctx, new, {}) for new in prepared]
        add = {"network": self._add_network, "subnet": self._add_subnet}[member]
        with session_for(self.db_url) as session:
            return [add(session, ctx, body) for body in bodies]
