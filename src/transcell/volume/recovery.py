"""What a volume service finds on start that a previous process left half done.

Creating, extending, uploading, deleting and an administrator's migration run
inside the volume service's process (a move's steps do not: the conductor
repeats those). When that process dies in one of them, the volume would stay
in a transitional status for ever; on start each is settled as Cinder's volume
manager settles it: a volume still ``creating`` is ``error``, ``extending`` is
``error_extending``, ``uploading`` goes back to what it was, ``deleting``
finishes, and an interrupted migration is undone (its partial copy deleted,
``migration_status`` ``error``); a snapshot still ``creating`` is ``error`` and one
``deleting`` is deleted. One volume service serves a volume database.
"""

from __future__ import annotations

import contextlib
import logging
import os

from sqlalchemy import delete, select, update

from transcell.context import RequestContext
from transcell.db.types import utcnow
from transcell.volume import backends as vb
from transcell.volume import exceptions as vexc
from transcell.volume import models as vm
from transcell.volume.records import Records

LOG = logging.getLogger(__name__)


def _unlink(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


class Recovery(Records):
    def recover(self, ctx: RequestContext) -> dict[str, int]:
        """Settle what the last process left; returns how many volumes of each kind."""
        counts = {"creating": 0, "extending": 0, "uploading": 0, "deleting": 0,
                  "migrating": 0}
        with self.session() as s:
            for copy in s.scalars(select(vm.VolumeCopy).where(
                    vm.VolumeCopy.role == vm.MIGRATION)):
                _unlink(copy.path)
                s.execute(update(vm.Volume).where(
                    vm.Volume.id == copy.volume_id, vm.Volume.status == vm.MAINTENANCE
                ).values(status=vm.AVAILABLE, migration_status="error",
                         updated_at=utcnow()))
                s.delete(copy)
                counts["migrating"] += 1
            for status, new in ((vm.CREATING, vm.ERROR), (vm.EXTENDING, vm.ERROR_EXTENDING)):
                counts[status] = s.execute(update(vm.Volume).where(
                    vm.Volume.status == status).values(status=new, updated_at=utcnow())
                ).rowcount
            for attached, back in ((vm.ATTACHED, vm.IN_USE), (vm.DETACHED, vm.AVAILABLE)):
                counts["uploading"] += s.execute(update(vm.Volume).where(
                    vm.Volume.status == vm.UPLOADING, vm.Volume.attach_status == attached
                ).values(status=back, updated_at=utcnow())).rowcount
            doomed = list(s.scalars(select(vm.Volume).where(vm.Volume.status == vm.DELETING)))
        for row in doomed:
            with contextlib.suppress(vexc.InvalidHost):
                _unlink(vb.backend(row.backend).path(row.id))
            with self.session() as s:
                s.execute(delete(vm.VolumeAttachment).where(
                    vm.VolumeAttachment.volume_id == row.id))
                counts["deleting"] += s.execute(delete(vm.Volume).where(
                    vm.Volume.id == row.id, vm.Volume.status == vm.DELETING)).rowcount
        if any(counts.values()):
            LOG.warning("volumes left mid-operation by the previous process, settled: %s",
                        counts)
        self.recover_snapshots()
        return counts

    def recover_snapshots(self) -> dict[str, int]:
        """A snapshot still ``creating`` is ``error`` (its file was built under a
        temporary name, never put in place); one ``deleting`` is deleted."""
        from transcell.volume.snapshots import snapshot_path
        counts = {"creating": 0, "deleting": 0}
        with self.session() as s:
            counts["creating"] = s.execute(update(vm.Snapshot).where(
                vm.Snapshot.status == vm.CREATING).values(status=vm.ERROR,
                                                          updated_at=utcnow())).rowcount
            doomed = list(s.scalars(select(vm.Snapshot).where(
                vm.Snapshot.status == vm.DELETING)))
        for row in doomed:
            with contextlib.suppress(vexc.InvalidHost):
                _unlink(snapshot_path(row.backend, row.id))
            with self.session() as s:
                counts["deleting"] += s.execute(delete(vm.Snapshot).where(
                    vm.Snapshot.id == row.id, vm.Snapshot.status == vm.DELETING)).rowcount
        if any(counts.values()):
            LOG.warning("snapshots left mid-operation by the previous process, settled: %s",
                        counts)
        return counts
