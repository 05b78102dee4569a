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
