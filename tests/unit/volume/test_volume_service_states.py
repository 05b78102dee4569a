"""The volume service's own rules, without a cloud: which backend a move picks, how an
attachment leaves its volume, and what a restarted service makes of half-done work."""

from __future__ import annotations

import os

import pytest

from transcell.conf import CONF
from transcell.context import RequestContext
from transcell.db import migration
from transcell.db.session import get_engine
from transcell.volume import backends as vb
from transcell.volume import exceptions as vexc
from transcell.volume import models as vm
from transcell.volume.attachments import Attachments
from transcell.volume.service import VolumeService

ADMIN = RequestContext.admin()


@pytest.fixture
def backends_conf():
    def configure(backends: list[str], types: list[str], mapping: dict | None = None):
        CONF.set_override("backends", backends, group="volume")
        CONF.set_override("volume_types", types, group="volume")
        CONF.set_override("move_backend_map", mapping or {}, group="volume")
    yield configure
    for name in ("backends", "volume_types", "move_backend_map"):
        CONF.clear_override(name, group="volume")


def test_default_backends_and_the_backend_a_move_needs(backends_conf):
    shared, one, two = (vb.backend(n) for n in ("shared", "local-cell1", "local-cell2"))
    assert shared.reaches("cell7") and one.reaches("cell1") and not one.reaches("cell2")
    assert vb.move_target(one, "cell2")[0] == two
    assert vb.default_type().backend == "shared"
    assert vb.parse_host("transcell@local-cell2#local-cell2") == two
    for bad in ("other@shared#shared", "transcell@shared#pool", "transcell@none"):
        with pytest.raises(vexc.InvalidHost):
            vb.parse_host(bad)


def test_operator_map_wins_and_blocked_moves_say_why(backends_conf):
    backends_conf(["a:cell1:fast", "b:cell2:fast", "c:cell2+cell3:fast", "d:cell1:slow"],
                  ["t:a"], {"a@cell2": "c"})
    assert vb.move_target(vb.backend("a"), "cell2")[0].name == "c"
    assert vb.move_target(vb.backend("a"), "cell3")[0].name == "c"  # same family
    target, reason = vb.move_target(vb.backend("d"), "cell2")
    assert target is None and "slow" in reason and "cell2" in reason
    backends_conf(["a:cell1:fast", "b:cell2:fast"], ["t:a"], {"a@cell2": "a"})
    target, reason = vb.move_target(vb.backend("a"), "cell2")
    assert target is None and "does not reach" in reason


def test_a_volume_status_follows_its_remaining_attachments():
    row = vm.Volume(status=vm.IN_USE, attach_status=vm.ATTACHED)
    att = [vm.VolumeAttachment(status=vm.ATTACHED), vm.VolumeAttachment(status=vm.RESERVED)]
    Attachments._settle(row, att)
    assert (row.status, row.attach_status) == (vm.IN_USE, vm.ATTACHED)
    Attachments._settle(row, att[1:])
    assert (row.status, row.attach_status) == (vm.RESERVED, vm.DETACHED)
    Attachments._settle(row, [])
    assert (row.status, row.attach_status) == (vm.AVAILABLE, vm.DETACHED)
    row.status = vm.MAINTENANCE  # a migration's volume is left alone
    Attachments._settle(row, att)
    assert row.status == vm.MAINTENANCE


def test_restart_settles_what_a_dead_process_left(tmp_path):
    CONF.set_override("data_dir", str(tmp_path / "volumes"), group="volume")
    url = f"sqlite:///{tmp_path / 'volume.sqlite'}"
    try:
        migration.sync(url, "volume")
        service = VolumeService(url)
        rows = {status: vm.Volume(project_id="p", size=1, status=status, volume_type="shared",
                                  backend="shared", attach_status=attach)
                for status, attach in ((vm.CREATING, vm.DETACHED),
                                       (vm.EXTENDING, vm.DETACHED),
                                       (vm.UPLOADING, vm.ATTACHED),
                                       (vm.DELETING, vm.DETACHED),
                                       (vm.MAINTENANCE, vm.DETACHED))}
        with service.session() as s:
            s.add_all(rows.values())
        migrating = rows[vm.MAINTENANCE]
        partial = vb.backend("local-cell2").path(migrating.id)
        doomed = vb.backend("shared").path(rows[vm.DELETING].id)
        for path in (partial, doomed):
            os.makedirs(os.path.dirname(path), exist_ok=True)
            open(path, "wb").close()
        with service.session() as s:
            s.execute(vm.Volume.__table__.update().where(
                vm.Volume.id == migrating.id).values(migration_status=vm.MIGRATING))
            s.add(vm.VolumeCopy(volume_id=migrating.id, move_id="m", role=vm.MIGRATION,
                                backend="local-cell2", path=partial, state=vm.COPYING))
        counts = service.recover(ADMIN)
        assert counts == {"creating": 1, "extending": 1, "uploading": 1, "deleting": 1,
                          "migrating": 1}
        got = {status: service.get(ADMIN, row.id) for status, row in rows.items()
               if status != vm.DELETING}
        assert got[vm.CREATING]["status"] == vm.ERROR
        assert got[vm.EXTENDING]["status"] == vm.ERROR_EXTENDING
        assert got[vm.UPLOADING]["status"] == vm.IN_USE
        assert (got[vm.MAINTENANCE]["status"], got[vm.MAINTENANCE]["migration_status"]) \
            == (vm.AVAILABLE, "error")
        with pytest.raises(vexc.VolumeNotFound):
            service.get(ADMIN, rows[vm.DELETING].id)
        assert not os.path.exists(partial) and not os.path.exists(doomed)
        assert service.move_copies(ADMIN) == []
        assert not any(service.recover(ADMIN).values())  # twice changes nothing
    finally:
        CONF.clear_override("data_dir", group="volume")
        get_engine(url).dispose()
