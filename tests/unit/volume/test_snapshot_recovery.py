"""A restarted volume service settles the snapshots a dead process left half done."""

from __future__ import annotations

import os

import pytest

from transcell.conf import CONF
from transcell.context import RequestContext
from transcell.db import migration
from transcell.db.session import get_engine
from transcell.volume import exceptions as vexc
from transcell.volume import models as vm
from transcell.volume.service import VolumeService
from transcell.volume.snapshots import snapshot_path

ADMIN = RequestContext.admin()


def test_restart_settles_snapshots(tmp_path):
    CONF.set_override("data_dir", str(tmp_path / "volumes"), group="volume")
    url = f"sqlite:///{tmp_path / 'volume.sqlite'}"
    try:
        migration.sync(url, "volume")
        service = VolumeService(url)
        rows = {status: vm.Snapshot(volume_id="v", project_id="p", size=1, status=status,
                                    backend="shared")
                for status in (vm.CREATING, vm.DELETING, vm.AVAILABLE)}
        with service.session() as s:
            s.add_all(rows.values())
        doomed = snapshot_path("shared", rows[vm.DELETING].id)
        os.makedirs(os.path.dirname(doomed), exist_ok=True)
        open(doomed, "wb").close()
        assert service.recover_snapshots() == {"creating": 1, "deleting": 1}
        assert service.get_snapshot(ADMIN, rows[vm.CREATING].id)["status"] == vm.ERROR
        assert service.get_snapshot(ADMIN, rows[vm.AVAILABLE].id)["status"] == vm.AVAILABLE
        with pytest.raises(vexc.SnapshotNotFound):
            service.get_snapshot(ADMIN, rows[vm.DELETING].id)
        assert not os.path.exists(doomed)
        assert service.recover_snapshots() == {"creating": 0, "deleting": 0}
        # a snapshot that failed may be deleted; its volume may then go
        service.delete_snapshot(ADMIN, rows[vm.CREATING].id)
        assert [s["id"] for s in service.list_snapshots(ADMIN, all_projects=True)] == \
            [rows[vm.AVAILABLE].id]
    finally:
        CONF.clear_override("data_dir", group="volume")
        get_engine(url).dispose()
