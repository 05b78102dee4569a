"""Which cells exist and which cell a host is in, as the network service needs it.

Segments reach cells; ports are bound to hosts. The network service runs in
the API tier, which has the API database with the cell and host mappings, so
by default it asks ``transcell.cell``. Tests without an API database give the
service a ``StaticCells`` instead.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Protocol

from sqlalchemy.engine import make_url

from transcell import exception

LOG = logging.getLogger(__name__)


class CellDirectory(Protocol):
    def names(self) -> list[str] | None:
        """The cells' names (cell0 excluded), or None when they cannot be known."""

    def cell_of_host(self, host: str) -> str | None:
        """The name of the host's cell, or None for a host no cell has."""


class APICells:
    """The cell and host mappings of the API database."""

    def names(self) -> list[str] | None:
        from transcell import cell as cells
        from transcell import conf

        url = conf.api_database_url()
        database = make_url(url).database if url.startswith("sqlite") else None
        if database and database != ":memory:" and not os.path.exists(database):
            return None  # no API database here: reading would create an empty one
        try:
            return [found.name for found in cells.list_cells(include_cell0=False)]
        except cells.UNREACHABLE as err:
            LOG.warning("The cells cannot be listed: %s", err)
            return None

    def cell_of_host(self, host: str) -> str | None:
        from transcell import cell as cells

        try:
            return cells.cell_of_host(host).name
        except exception.ComputeHostNotFound:
            return None


class StaticCells:
    """A fixed map of cells to their hosts."""

    def __init__(self, hosts_by_cell: Mapping[str, list[str]]):
        self.hosts_by_cell = {name: list(hosts) for name, hosts in hosts_by_cell.items()}

    def names(self) -> list[str] | None:
        return list(self.hosts_by_cell)

    def cell_of_host(self, host: str) -> str | None:
        for name, hosts in self.hosts_by_cell.items():
            if host in hosts:
                return name
        return None
