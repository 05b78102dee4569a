"""Plant what a crash or a race leaves behind, straight into a running cloud's state.

Run as ``python plant.py STATE_DIR JSON``, JSON being a list of
``[action, {args}]``; prints a JSON list of results. A separate process, so
the test process never points transcell's global configuration at the cloud.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from typing import Any

from sqlalchemy import select, update

from transcell import cell as cells
from transcell.cli import main as cli
from transcell.db import api_models as am
from transcell.db import cell_models as cm
from transcell.db.session import api_session, cell_session


def _ago(seconds: float) -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(seconds=seconds)


def _cell_of(uuid: str, hidden: bool = False) -> cells.Cell:
    for cell in cells.list_cells():
        with cell_session(cell) as s:
            if s.scalar(select(cm.Instance.id).where(cm.Instance.uuid == uuid,
                                                     cm.Instance.deleted == 0,
                                                     cm.Instance.hidden.is_(hidden))):
                return cell
    raise LookupError(uuid)


def row(uuid: str, values: dict[str, Any], age: float = 0) -> dict:
    """Set columns on the server's visible row, as if last written ``age`` seconds ago."""
    cell = _cell_of(uuid)
    with cell_session(cell) as s:
        s.execute(update(cm.Instance).where(cm.Instance.uuid == uuid, cm.Instance.deleted == 0,
                                            cm.Instance.hidden.is_(False))
                  .values(**values, updated_at=_ago(age)))
    return get_row(uuid)


def get_row(uuid: str) -> dict:
    cell = _cell_of(uuid)
    with cell_session(cell) as s:
        r = s.scalar(select(cm.Instance).where(cm.Instance.uuid == uuid,
                                               cm.Instance.deleted == 0,
                                               cm.Instance.hidden.is_(False)))
        return {"cell": cell.name, "host": r.host, "node": r.node, "vm_state": r.vm_state,
                "task_state": r.task_state, "project_id": r.project_id, "vcpus": r.vcpus}


def mapping(uuid: str, queued_for_delete: bool, age: float = 0) -> None:
    with api_session() as s:
        s.execute(update(am.InstanceMapping).where(am.InstanceMapping.instance_uuid == uuid)
                  .values(queued_for_delete=queued_for_delete, updated_at=_ago(age)))


def saga(uuid: str, instance_uuid: str, status: str, resources: dict[str, Any]) -> None:
    with api_session() as s:
        found = s.scalar(select(am.MoveSaga).where(am.MoveSaga.uuid == uuid))
        if found is not None:
            found.status = status
            return
        s.add(am.MoveSaga(uuid=uuid, instance_uuid=instance_uuid, kind="resize", status=status,
                          flipped=False, context={}, steps=[], resources=resources,
                          owner=None, updated_at=_ago(3600)))


def allocate(consumer: str, node: str, resources: dict[str, int]) -> None:
    from transcell.audit import _services
    placement = _services(None, None, None)[0]
    for cell in cells.list_cells(include_cell0=False):
        with cell_session(cell) as s:
            found = s.scalar(select(cm.ComputeNode.uuid)
                             .where(cm.ComputeNode.hypervisor_hostname == node))
        if found:
            assert placement.claim(consumer, {found: {"resources": resources}}, "p", "u",
                                   consumer_type="MIGRATION")
            return
    raise LookupError(node)


def allocations(consumer: str) -> dict:
    from transcell.audit import _services
    return _services(None, None, None)[0].get_allocations(consumer)["allocations"]


def image(image_id: str, owner: str, migration: str) -> None:
    from transcell.audit import _services
    from transcell.context import RequestContext
    images = _services(None, None, None)[2]
    images.create(RequestContext.admin(), id=image_id, owner=owner, name="leftover-resize-temp",
                  disk_format="raw", container_format="bare", os_hidden=True,
                  transcell_migration=migration)


def hidden_copy(uuid: str, into: str) -> None:
    from transcell.move import copy
    copy.copy_instance(_cell_of(uuid), cells.get_cell(into), uuid, hidden=True)


def main() -> None:
    state_dir, actions = sys.argv[1], json.loads(sys.argv[2])
    cli.load_config(argparse.Namespace(state_dir=state_dir))
    results = [globals()[name](**args) for name, args in actions]
    print(json.dumps(results, default=str))


if __name__ == "__main__":
    main()
