"""Rows written through ``session_for`` read back the same on SQLite, PostgreSQL and MariaDB.

Scenarios an operator would recognise: a cell registered and a server mapped to
it in the API database; a server with everything it owns in its cell; soft
deletion; many service threads recording actions into one cell at once.
"""

from __future__ import annotations

import threading
import uuid

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from transcell.db import cell_models as cm
from transcell.db.api_models import CellMapping, InstanceMapping
from transcell.db.session import cell_session, session_for
from transcell.db.types import utcnow

PROJECT = "6f70656e737461636b20697320636f6f"
USER = "7573657220726f6f6d20666f72206d65"

# A flavor as a server carries it by value: nested, unicode (4-byte UTF-8
# included, which MariaDB only stores under utf8mb4), floats, nulls and booleans.
FLAVOR = {
    "cur": {
        "flavorid": "m1.tiny", "name": "m1.tiny ünïcødé 🚀", "memory_mb": 512, "vcpus": 1,
        "root_gb": 1, "ephemeral_gb": 0, "swap": 0, "rxtx_factor": 1.5, "is_public": True,
        "description": None,
        "extra_specs": {"hw:cpu_policy": "dedicated", "quota:disk_read_bytes_sec": "10240"},
    },
    "old": None,
    "new": None,
}


def new_uuid() -> str:
    return str(uuid.uuid4())


def add_instance(url: str, **fields) -> str:
    values = {"uuid": new_uuid(), "user_id": USER, "project_id": PROJECT,
              "display_name": "vm", "vm_state": "active"} | fields
    with session_for(url) as s:
        s.add(cm.Instance(**values))
    return values["uuid"]


def test_cell_and_instance_mappings_locate_a_server(api_db: str, cell_db: str) -> None:
    with session_for(api_db) as s:
        cell = CellMapping(uuid=new_uuid(), name="cell1", database_connection=cell_db,
                           transport_url="inproc://cell1")
        s.add(cell)
        s.flush()
        server = new_uuid()
        s.add(InstanceMapping(instance_uuid=server, cell_id=cell.id, project_id=PROJECT,
                              user_id=USER))
        s.add(InstanceMapping(instance_uuid=new_uuid(), cell_id=None, project_id=PROJECT))

    with session_for(api_db) as s:
        mapping = s.scalars(sa.select(InstanceMapping)
                            .where(InstanceMapping.instance_uuid == server)).one()
        unscheduled = s.scalars(sa.select(InstanceMapping)
                                .where(InstanceMapping.cell_id.is_(None))).all()
    assert mapping.cell is not None and mapping.cell.name == "cell1"
    assert mapping.cell.disabled is False and not mapping.cell.is_cell0
    assert mapping.queued_for_delete is False
    assert mapping.created_at is not None and mapping.updated_at is None
    assert len(unscheduled) == 1 and unscheduled[0].cell is None

    # The mapping is how code reaches the server's own database.
    add_instance(mapping.cell.database_connection, uuid=server, display_name="web-1")
    with cell_session(mapping.cell) as s:
        assert s.scalars(sa.select(cm.Instance.display_name)
                         .where(cm.Instance.uuid == server)).one() == "web-1"

    with pytest.raises(IntegrityError), session_for(api_db) as s:
        s.add(InstanceMapping(instance_uuid=server, project_id=PROJECT))


def test_server_and_everything_it_owns_round_trip(cell_db: str) -> None:
    server = add_instance(cell_db, display_name="db-ñ-1", host="compute1", memory_mb=512)
    port, volume = new_uuid(), new_uuid()
    with session_for(cell_db) as s:
        s.add(cm.InstanceExtra(instance_uuid=server, flavor=FLAVOR,
                               keypairs=[{"name": "k1", "type": "ssh", "public_key": "ssh-a"}],
                               request_networks=[{"network_id": "auto"}]))
        s.add_all([cm.Tag(resource_id=server, tag=t) for t in ("blue", "db", "ünï")])
        s.add(cm.BlockDeviceMapping(uuid=new_uuid(), instance_uuid=server, source_type="volume",
                                    destination_type="volume", volume_id=volume, boot_index=0,
                                    delete_on_termination=True))
        s.add(cm.VirtualInterface(uuid=port, instance_uuid=server, address="fa:16:3e:00:00:01",
                                  info={"fixed_ips": [{"ip_address": "10.0.0.5"}], "mtu": 1450}))
        action = cm.InstanceAction(action="create", instance_uuid=server, request_id="req-1",
                                   user_id=USER, project_id=PROJECT)
        s.add(action)
        s.flush()
        s.add(cm.InstanceActionEvent(action_id=action.id, event="compute_build_and_run",
                                     result="Success", host="compute1"))
        s.add(cm.InstanceFault(instance_uuid=server, code=500, message="NoValidHost",
                               details="Traceback ..."))
        s.add(cm.Migration(uuid=new_uuid(), instance_uuid=server, source_compute="compute1",
                           dest_compute="compute2", status="migrating",
                           migration_type="resize", cross_cell_move=True,
                           stats={"bytes_moved": 2**40, "phases": {"copy": 12.5}}))

    with session_for(cell_db) as s:
        inst = s.scalars(sa.select(cm.Instance).where(cm.Instance.uuid == server)).one()
        extra = s.scalars(sa.select(cm.InstanceExtra)
                          .where(cm.InstanceExtra.instance_uuid == server)).one()
        tags = s.scalars(sa.select(cm.Tag.tag).where(cm.Tag.resource_id == server)).all()
        bdm = s.scalars(sa.select(cm.BlockDeviceMapping)
                        .where(cm.BlockDeviceMapping.instance_uuid == server)).one()
        vif = s.scalars(sa.select(cm.VirtualInterface)
                        .where(cm.VirtualInterface.instance_uuid == server)).one()
        event = s.execute(sa.select(cm.InstanceAction.action, cm.InstanceActionEvent.event)
                          .join(cm.InstanceActionEvent,
                                cm.InstanceActionEvent.action_id == cm.InstanceAction.id)
                          .where(cm.InstanceAction.instance_uuid == server)).one()
        fault = s.scalars(sa.select(cm.InstanceFault)
                          .where(cm.InstanceFault.instance_uuid == server)).one()
        move = s.scalars(sa.select(cm.Migration)
                         .where(cm.Migration.instance_uuid == server)).one()

    assert (inst.display_name, inst.host, inst.memory_mb) == ("db-ñ-1", "compute1", 512)
    assert (inst.deleted, inst.hidden, inst.locked) == (0, False, False)
    assert extra.flavor == FLAVOR
    assert extra.keypairs[0]["name"] == "k1" and extra.migration_context is None
    assert sorted(tags) == ["blue", "db", "ünï"]
    assert (bdm.volume_id, bdm.boot_index, bdm.delete_on_termination) == (volume, 0, True)
    assert (vif.uuid, vif.info["fixed_ips"][0]["ip_address"]) == (port, "10.0.0.5")
    assert tuple(event) == ("create", "compute_build_and_run")
    assert (fault.code, fault.message) == (500, "NoValidHost")
    assert move.stats == {"bytes_moved": 2**40, "phases": {"copy": 12.5}}
    assert (move.cross_cell_move, move.hidden) == (True, False)


def test_timestamps_keep_their_value_and_updates_stamp_updated_at(cell_db: str) -> None:
    launched = utcnow()
    server = add_instance(cell_db, launched_at=launched)
    with session_for(cell_db) as s:
        inst = s.scalars(sa.select(cm.Instance).where(cm.Instance.uuid == server)).one()
        assert inst.launched_at == launched and inst.updated_at is None
        inst.vm_state = "stopped"

    with session_for(cell_db) as s:
        inst = s.scalars(sa.select(cm.Instance).where(cm.Instance.uuid == server)).one()
    assert inst.vm_state == "stopped" and inst.updated_at is not None


def test_owned_rows_need_an_existing_server(cell_db: str) -> None:
    """Foreign keys are enforced on every engine (SQLite only with its pragma on)."""
    with pytest.raises(IntegrityError), session_for(cell_db) as s:
        s.add(cm.Tag(resource_id=new_uuid(), tag="orphan"))


def test_purging_a_server_removes_what_it_owns(cell_db: str) -> None:
    server = add_instance(cell_db)
    with session_for(cell_db) as s:
        s.add(cm.InstanceExtra(instance_uuid=server, flavor=FLAVOR))
        s.add(cm.Tag(resource_id=server, tag="t"))
        s.add(cm.InstanceFault(instance_uuid=server, code=500))

    with session_for(cell_db) as s:
        s.execute(sa.delete(cm.Instance).where(cm.Instance.uuid == server))

    with session_for(cell_db) as s:
        for model in (cm.InstanceExtra, cm.Tag, cm.InstanceFault):
            assert s.scalar(sa.select(sa.func.count()).select_from(model)) == 0, model


def test_duplicate_live_instance_uuid_is_refused(cell_db: str) -> None:
    server = add_instance(cell_db)

    with pytest.raises(IntegrityError):
        add_instance(cell_db, uuid=server)

    with session_for(cell_db) as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(cm.Instance)) == 1


def test_hidden_defaults_false_and_filters_split_rows(cell_db: str) -> None:
    shown = add_instance(cell_db)
    hidden = add_instance(cell_db, hidden=True)
    gone = add_instance(cell_db)
    with session_for(cell_db) as s:
        row = s.scalars(sa.select(cm.Instance).where(cm.Instance.uuid == gone)).one()
        row.deleted, row.deleted_at = row.id, utcnow()

    def uuids(*where) -> set[str]:
        with session_for(cell_db) as s:
            return set(s.scalars(sa.select(cm.Instance.uuid).where(*where)))

    assert uuids(cm.Instance.hidden.is_(False), cm.Instance.deleted == 0) == {shown}
    assert uuids(cm.Instance.hidden.is_(True)) == {hidden}
    assert uuids(cm.Instance.hidden == sa.false()) == {shown, gone}
    assert uuids(cm.Instance.deleted != 0) == {gone}


def test_services_unique_per_host_and_binary_until_soft_deleted(cell_db: str) -> None:
    def add_service() -> None:
        with session_for(cell_db) as s:
            s.add(cm.Service(uuid=new_uuid(), host="compute1", binary="transcell-compute"))

    add_service()
    with pytest.raises(IntegrityError):
        add_service()

    with session_for(cell_db) as s:
        old = s.scalars(sa.select(cm.Service)).one()
        assert (old.disabled, old.forced_down, old.report_count) == (False, False, 0)
        old.deleted, old.deleted_at = old.id, utcnow()
    add_service()

    with session_for(cell_db) as s:
        live = s.scalars(sa.select(cm.Service).where(cm.Service.deleted == 0)).all()
        total = s.scalar(sa.select(sa.func.count()).select_from(cm.Service))
    assert len(live) == 1 and live[0].id != old.id and total == 2


def test_session_for_rolls_back_when_the_block_fails(cell_db: str) -> None:
    with pytest.raises(RuntimeError), session_for(cell_db) as s:
        s.add(cm.Instance(uuid=new_uuid(), user_id=USER, project_id=PROJECT))
        s.flush()
        raise RuntimeError("boom")

    with session_for(cell_db) as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(cm.Instance)) == 0


def test_concurrent_writers_lose_no_rows(cell_db: str) -> None:
    threads, per_thread = 8, 20
    server = add_instance(cell_db)
    start = threading.Barrier(threads)
    errors: list[BaseException] = []

    def record_actions(worker: int) -> None:
        try:
            start.wait(timeout=10)
            for n in range(per_thread):
                with session_for(cell_db) as s:
                    s.add(cm.InstanceAction(action="reboot", instance_uuid=server,
                                            request_id=f"req-{worker}-{n}"))
        except BaseException as exc:  # reported by the main thread below
            errors.append(exc)

    workers = [threading.Thread(target=record_actions, args=(w,)) for w in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=60)

    assert not any(w.is_alive() for w in workers), "a writer is stuck"
    assert errors == []
    with session_for(cell_db) as s:
        request_ids = set(s.scalars(sa.select(cm.InstanceAction.request_id)
                                    .where(cm.InstanceAction.instance_uuid == server)))
    assert request_ids == {f"req-{w}-{n}" for w in range(threads) for n in range(per_thread)}
