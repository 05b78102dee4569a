"""Bringing a state directory to a runnable cloud, idempotently.

Every step checks before it creates, so running it again on the same state
directory (a restart) changes nothing that exists.
"""

from __future__ import annotations

import os
import uuid as uuidlib

from sqlalchemy import select

from transcell import conf
from transcell.cell import CELL0_UUID
from transcell.conf import CONF
from transcell.db import api_models as am
from transcell.db import migration
from transcell.db.session import api_session
from transcell.placement import schema as placement_schema


def host_names(cell_name: str) -> list[str]:
    return [f"{cell_name}-host{i}" for i in range(1, CONF.embedded.hosts_per_cell + 1)]


def cell_names() -> list[str]:
    return [f"cell{i}" for i in range(1, CONF.embedded.cells + 1)]


def cell_traits(cell_name: str) -> list[str]:
    """Embedded default: each cell is one hardware generation (cell1 = GEN1, ...)."""
    return [f"CUSTOM_HW_GEN{cell_name.removeprefix('cell')}"]


def sync_databases() -> None:
    os.makedirs(CONF.state_dir, exist_ok=True)
    migration.sync(conf.api_database_url(), "api")
    _ensure_cell("cell0", CELL0_UUID)
    for name in cell_names():
        _ensure_cell(name, None)
    with api_session() as s:
        cells = s.scalars(select(am.CellMapping)).all()
        urls = [c.database_connection for c in cells]
    for url in urls:
        migration.sync(url, "cell")
    migration.sync(conf.network_database_url(), "network")
    migration.sync(conf.volume_database_url(), "volume")
    migration.sync(conf.image_database_url(), "image")
    url = placement_database_url()
    if url is not None:
        placement_schema.sync(url)


def placement_database_url() -> str | None:
    """Placement's database when this deployment owns it: ``[placement]
    database_connection``, or the embedded default; None for an external Placement
    (``[placement] url``) whose database is not configured here."""
    if CONF.placement.database_connection:
        return CONF.placement.database_connection
    if CONF.placement.url:
        return None
    from transcell.placement import embedded
    return embedded.database_url()


def _ensure_cell(name: str, uuid: str | None) -> None:
    with api_session() as s:
        if s.scalar(select(am.CellMapping).where(am.CellMapping.name == name)) is None:
            s.add(am.CellMapping(uuid=uuid or str(uuidlib.uuid4()), name=name,
                                 database_connection=conf.cell_database_url(name),
                                 transport_url=f"inproc://{name}"))


def ensure_host_mappings() -> None:
    with api_session() as s:
        for cell_name in cell_names():
            cell = s.scalar(select(am.CellMapping).where(am.CellMapping.name == cell_name))
            for host in host_names(cell_name):
                if s.scalar(select(am.HostMapping).where(am.HostMapping.host == host)) is None:
                    s.add(am.HostMapping(host=host, cell_id=cell.id))


def sync_distributed(cells: dict[str, tuple[str, str, str]], cell0_url: str,
                     api_bus_url: str) -> None:
    """The schemas and cell mappings of a distributed layout, idempotently.

    ``cells`` maps a cell's name to (uuid, database URL, transport URL), as the
    launcher provisioned them; a mapping whose URLs changed (new credentials) is
    brought up to date. cell0 has no hosts and no bus of its own: its transport is
    the API tier's, which nothing in it ever uses.
    """
    migration.sync(conf.api_database_url(), "api")
    wanted = {"cell0": (CELL0_UUID, cell0_url, api_bus_url), **cells}
    with api_session() as s:
        for name, (uuid, db_url, bus_url) in wanted.items():
            row = s.scalar(select(am.CellMapping).where(am.CellMapping.name == name))
            if row is None:
                s.add(am.CellMapping(uuid=uuid, name=name, database_connection=db_url,
                                     transport_url=bus_url))
            else:
                row.database_connection, row.transport_url = db_url, bus_url
    for _uuid, db_url, _bus in wanted.values():
        migration.sync(db_url, "cell")
    migration.sync(conf.network_database_url(), "network")
    migration.sync(conf.volume_database_url(), "volume")
    migration.sync(conf.image_database_url(), "image")
    ensure_host_mappings()
