"""Volume snapshots: a copy of a volume's bytes at one moment, and volumes made from one.

A snapshot is its own sparse file beside the volume's on the same backend
(``snapshot-<id>``), made by the same copy a clone uses (shared extents where
the filesystem can, else only the data runs), so later writes to the volume
never reach it. As with volumes, the row is written ``creating`` first and
becomes ``available`` only once its file is whole; a crash leaves a visible
snapshot in a known state, never a file nobody knows.

Cinder's rules: a snapshot is taken of an ``available`` volume, or of an
``in-use`` one when the caller says ``force``; a volume with snapshots is not
deleted (unless ``cascade``, which deletes them first). Both checks hold the
volume's row (the conditional UPDATE takes it first), so a snapshot racing a
delete of its volume cannot slip in between.
"""

from __future__ import annotations

import contextlib
import logging
import os
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from transcell.context import RequestContext
from transcell.db.types import utcnow
from transcell.volume import backends as vb
from transcell.volume import exceptions as vexc
from transcell.volume import models as vm
from transcell.volume import views

LOG = logging.getLogger(__name__)

#: what a snapshot may be deleted in (Cinder's list)
SNAPSHOT_DELETABLE = (vm.AVAILABLE, vm.ERROR)
SNAPSHOT_UPDATABLE = {"name", "description", "metadata"}


def snapshot_path(backend: str, snapshot_id: str) -> str:
    return os.path.join(vb.backend(backend).directory(), f"snapshot-{snapshot_id}")


def snapshot_view(row: vm.Snapshot) -> dict[str, Any]:
    """Cinder's snapshot body with its extended attributes (the API hides them by policy)."""
    return {
        "id": row.id, "name": row.name, "description": row.description,
        "volume_id": row.volume_id, "status": row.status, "size": row.size,
        "metadata": dict(row.metadata_ or {}), "user_id": row.user_id,
        "created_at": views.timestamp(row.created_at),
        "updated_at": views.timestamp(row.updated_at),
        "os-extended-snapshot-attributes:project_id": row.project_id,
        "os-extended-snapshot-attributes:progress":
            "100%" if row.status == vm.AVAILABLE else "0%",
    }


def _data(name: str) -> Any:
    from transcell.volume import data
    return getattr(data, name)


class Snapshots:
    """Mixed into ``VolumeService`` (which provides ``session``, ``load``, ``cas``...)."""

    def _load_snapshot(self, s: Session, ctx: RequestContext, snapshot_id: str
                       ) -> vm.Snapshot:
        row = s.get(vm.Snapshot, snapshot_id) if isinstance(snapshot_id, str) else None
        if row is None or not (ctx.is_admin or row.project_id == ctx.project_id):
            raise vexc.SnapshotNotFound(snapshot_id=snapshot_id)
        return row

    def get_snapshot(self, ctx: RequestContext, snapshot_id: str) -> dict[str, Any]:
        with self.session() as s:  # type: ignore[attr-defined]
            return snapshot_view(self._load_snapshot(s, ctx, snapshot_id))

    def list_snapshots(self, ctx: RequestContext, all_projects: bool = False,
                       project_id: str | None = None, volume_id: str | None = None
                       ) -> list[dict[str, Any]]:
        """Newest first; the caller's project unless an administrator asks for more."""
        with self.session() as s:  # type: ignore[attr-defined]
            query = select(vm.Snapshot).order_by(vm.Snapshot.created_at.desc(),
                                                 vm.Snapshot.id.desc())
            if project_id and ctx.is_admin:
                query = query.where(vm.Snapshot.project_id == project_id)
            elif not (all_projects and ctx.is_admin):
                query = query.where(vm.Snapshot.project_id == ctx.project_id)
            if volume_id:
                query = query.where(vm.Snapshot.volume_id == volume_id)
            return [snapshot_view(row) for row in s.scalars(query)]

    def create_snapshot(self, ctx: RequestContext, volume_id: str, *,
                        name: str | None = None, description: str | None = None,
                        metadata: dict[str, str] | None = None, force: bool = False
                        ) -> dict[str, Any]:
        """Copy the volume's bytes as they are now into a new snapshot.

        The volume must be ``available`` (or ``in-use`` with ``force``) and not
        migrating; its status is not changed, but its row is held while the
        snapshot's row is written, so a delete of the volume waits or sees it.
        """
        allowed = [vm.AVAILABLE, vm.IN_USE] if force else [vm.AVAILABLE]
        with self.session() as s:  # type: ignore[attr-defined]
            row = self.load(s, ctx, volume_id)  # type: ignore[attr-defined]
            if row.status not in allowed:
                raise vexc.InvalidVolume(reason=f"Volume {volume_id} status must be "
                                                f"{' or '.join(allowed)}, but current "
                                                f"status is: {row.status}.")
            volume = self.cas(s, ctx, volume_id, expect=allowed,  # type: ignore[attr-defined]
                              action="snapshotted")
            snap = vm.Snapshot(volume_id=volume.id, project_id=volume.project_id,
                               user_id=ctx.user_id or "", name=name,
                               description=description, size=volume.size,
                               status=vm.CREATING, backend=volume.backend,
                               metadata_=dict(metadata or {}))
            s.add(snap)
            s.flush()
            snapshot_id, backend = snap.id, volume.backend
            src = vb.backend(volume.backend).path(volume.id)
        try:
            _data("clone")(src, snapshot_path(backend, snapshot_id))
        except Exception as exc:
            LOG.error("snapshot %s of volume %s failed: %s", snapshot_id, volume_id, exc)
            with self.session() as s:  # type: ignore[attr-defined]
                self._set_snapshot_status(s, snapshot_id, vm.CREATING, vm.ERROR)
            raise vexc.VolumeDataError(reason=f"the data of snapshot {snapshot_id} could "
                                              f"not be copied") from exc
        with self.session() as s:  # type: ignore[attr-defined]
            self._set_snapshot_status(s, snapshot_id, vm.CREATING, vm.AVAILABLE)
            return snapshot_view(self._load_snapshot(s, ctx, snapshot_id))

    @staticmethod
    def _set_snapshot_status(s: Session, snapshot_id: str, expected: str, new: str) -> bool:
        return s.execute(update(vm.Snapshot).where(
            vm.Snapshot.id == snapshot_id, vm.Snapshot.status == expected).values(
            status=new, updated_at=utcnow())).rowcount == 1

    def update_snapshot(self, ctx: RequestContext, snapshot_id: str,
                        changes: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(changes) - SNAPSHOT_UPDATABLE)
        if unknown:
            raise vexc.InvalidInput(reason=f"cannot update {', '.join(unknown)}")
        values = {("metadata_" if key == "metadata" else key): value
                  for key, value in changes.items()}
        with self.session() as s:  # type: ignore[attr-defined]
            self._load_snapshot(s, ctx, snapshot_id)
            s.execute(update(vm.Snapshot).where(vm.Snapshot.id == snapshot_id).values(
                **values, updated_at=utcnow()).execution_options(synchronize_session=False))
            row = self._load_snapshot(s, ctx, snapshot_id)
            s.refresh(row)
            return snapshot_view(row)

    def delete_snapshot(self, ctx: RequestContext, snapshot_id: str) -> None:
        """Remove the snapshot and its file; only an available or failed one."""
        with self.session() as s:  # type: ignore[attr-defined]
            row = self._load_snapshot(s, ctx, snapshot_id)
            changed = s.execute(update(vm.Snapshot).where(
                vm.Snapshot.id == snapshot_id,
                vm.Snapshot.status.in_(SNAPSHOT_DELETABLE)).values(
                status=vm.DELETING, updated_at=utcnow())).rowcount
            if changed != 1:
                s.refresh(row)
                raise vexc.InvalidSnapshot(reason=f"Snapshot status must be available or "
                                                  f"error, but it is {row.status}")
            backend = row.backend
        self._drop_snapshot(snapshot_id, backend)

    def _drop_snapshot(self, snapshot_id: str, backend: str) -> None:
        try:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(snapshot_path(backend, snapshot_id))
        except OSError as exc:
            with self.session() as s:  # type: ignore[attr-defined]
                self._set_snapshot_status(s, snapshot_id, vm.DELETING, vm.ERROR_DELETING)
            raise vexc.VolumeDataError(reason=f"snapshot {snapshot_id}'s file could not "
                                              f"be removed") from exc
        with self.session() as s:  # type: ignore[attr-defined]
            s.execute(delete(vm.Snapshot).where(vm.Snapshot.id == snapshot_id,
                                                vm.Snapshot.status == vm.DELETING))

    # -- for volumes ---------------------------------------------------------------------
    @staticmethod
    def snapshot_count(s: Session, volume_id: str) -> int:
        return int(s.scalar(select(func.count()).select_from(vm.Snapshot).where(
            vm.Snapshot.volume_id == volume_id)) or 0)

    def snapshot_source(self, ctx: RequestContext, snapshot_id: str) -> dict[str, Any]:
        """What a new volume made from the snapshot needs: size, backend, type, file."""
        with self.session() as s:  # type: ignore[attr-defined]
            row = self._load_snapshot(s, ctx, snapshot_id)
            if row.status != vm.AVAILABLE:
                raise vexc.InvalidSnapshot(reason=f"Originating snapshot status must be "
                                                  f"one of available values, but it is "
                                                  f"{row.status}")
            volume = s.get(vm.Volume, row.volume_id)
            return {"size": row.size, "backend": row.backend,
                    "volume_type": volume.volume_type if volume else None,
                    "bootable": bool(volume and volume.bootable),
                    "image_metadata": dict(volume.image_metadata or {}) if volume else {},
                    "path": snapshot_path(row.backend, row.id)}
