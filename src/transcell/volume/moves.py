"""Migrating a volume between backends: for a server's move, and for an administrator.

A move drives it in steps, each safe to repeat (a conductor killed mid-step
runs it again) and keyed by the move's id: ``move_copy`` writes and verifies
the volume's file on the new backend while the old one stays the volume's,
``move_switch`` makes the new file the volume's and keeps the old one,
``move_confirm`` deletes the old one and ``move_revert`` goes back to it. Every
file written besides a volume's live one is recorded in ``volume_copies``
before it is written, so a crash leaves nothing nobody knows of.

Bytes travel through the image store when the two backends share no cell
(no host reaches both, so nothing else could carry them), sending only the
chunks the store lacks; otherwise they are copied directly. Each volume keeps
its chunks in the store under a hidden image, so its next migration sends only
what changed since.

``os-migrate_volume`` uses the same copy, refused for a volume that is not
``available``: an attached volume may be written while it is copied, and only
a move (which stops the guest first) can migrate one.
"""

from __future__ import annotations

import contextlib
import logging
import os
import uuid
from typing import Any

from sqlalchemy import delete, select, update

from transcell import cell as cells
from transcell.context import RequestContext
from transcell.db.types import utcnow
from transcell.volume import backends as vb
from transcell.volume import exceptions as vexc
from transcell.volume import models as vm
from transcell.volume.records import Records
from transcell.volume.volumes import background, data_op, kept_image_id

LOG = logging.getLogger(__name__)


def _cell_names() -> list[str]:
    return [cell.name for cell in cells.list_cells(include_cell0=False)]


def share_a_cell(one: vb.Backend, other: vb.Backend) -> bool:
    names = _cell_names()
    return bool(set(one.cell_names(names)) & set(other.cell_names(names)))


def transfer_image_id(volume_id: str, move_id: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"transcell-volume-transfer:{volume_id}:"
                                              f"{move_id}"))


def _unlink(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def copy_view(row: vm.VolumeCopy) -> dict[str, Any]:
    return {"id": row.id, "volume_id": row.volume_id, "move_id": row.move_id,
            "role": row.role, "backend": row.backend, "path": row.path, "state": row.state,
            "checksum": row.checksum, "bytes": row.bytes, "bytes_sent": row.bytes_sent,
            "created_at": row.created_at.isoformat() if row.created_at else None}


class Moves(Records):
    # -- what a move would do ---------------------------------------------------------
    def backend_info(self, ctx: RequestContext, volume_id: str) -> dict[str, Any]:
        with self.session() as s:
            row = self.load(s, ctx, volume_id)
        backend = vb.backend(row.backend)
        path = backend.path(row.id)
        try:
            size_bytes, allocated = os.path.getsize(path), data_op("allocated_bytes")(path)
        except FileNotFoundError:
            size_bytes, allocated = 0, 0
        return {"volume_id": row.id, "backend": backend.name,
                "cells": backend.cell_names(_cell_names()), "family": backend.family,
                "path": path, "size_bytes": size_bytes, "allocated_bytes": allocated,
                "host": backend.host, "last_transfer": row.last_transfer}

    def plan_move(self, ctx: RequestContext, volume_id: str, target_cell_name: str
                  ) -> dict[str, Any]:
        with self.session() as s:
            row = self.load(s, ctx, volume_id)
        source = vb.backend(row.backend)
        plan: dict[str, Any] = {"volume_id": row.id, "from_backend": source.name,
                                "to_backend": source.name, "bytes": 0}
        if source.reaches(target_cell_name):
            return {**plan, "action": "keep",
                    "reason": f"backend {source.name} reaches cell {target_cell_name}"}
        target, reason = vb.move_target(source, target_cell_name)
        if target is None:
            return {**plan, "action": "blocked", "to_backend": None, "reason": reason}
        try:
            allocated = data_op("allocated_bytes")(source.path(row.id))
        except FileNotFoundError:
            allocated = 0
        return {**plan, "action": "migrate", "to_backend": target.name, "bytes": allocated,
                "reason": reason, "through_store": not share_a_cell(source, target)}

    # -- copying ----------------------------------------------------------------------
    def _transfer(self, row_id: str, move_id: str, source: vb.Backend, target: vb.Backend
                  ) -> dict[str, Any]:
        src, dst = source.path(row_id), target.path(row_id)
        if share_a_cell(source, target):
            result = data_op("copy_direct")(src, dst)
            return {**result, "through_store": False}
        result = data_op("send_through_store")(
            RequestContext.admin(), src, dst, transfer_image_id(row_id, move_id),
            keep_image_id=kept_image_id(row_id))
        return {**result, "through_store": True}

    def _copy_row(self, s, volume_id: str, move_id: str, role: str) -> vm.VolumeCopy | None:
        return s.scalar(select(vm.VolumeCopy).where(
            vm.VolumeCopy.volume_id == volume_id, vm.VolumeCopy.move_id == move_id,
            vm.VolumeCopy.role == role))

    @staticmethod
    def _result(copy: vm.VolumeCopy) -> dict[str, Any]:
        return {"path": copy.path, "checksum": copy.checksum, "bytes_sent": copy.bytes_sent,
                "bytes": copy.bytes, "backend": copy.backend}

    def move_copy(self, ctx: RequestContext, volume_id: str, move_id: str,
                  to_backend: str) -> dict[str, Any]:
        target = vb.backend(to_backend)
        with self.session() as s:
            row = self.load(s, ctx, volume_id)
            copy = self._copy_row(s, volume_id, move_id, vm.TARGET)
            if copy is not None and copy.state in (vm.COPIED, vm.LIVE):
                return self._result(copy)
            if copy is None and row.backend == target.name:
                raise vexc.InvalidHost(reason=f"volume {volume_id} is already on backend "
                                              f"{target.name}")
        source = vb.backend(row.backend)
        with self.session() as s:
            self.cas(s, ctx, volume_id, migrating=None, expect=None, action="migrated",
                     migration_status=vm.MIGRATING)
            copy = self._copy_row(s, volume_id, move_id, vm.TARGET)
            if copy is None:
                s.add(vm.VolumeCopy(volume_id=volume_id, move_id=move_id, role=vm.TARGET,
                                    backend=target.name, path=target.path(volume_id),
                                    state=vm.COPYING))
        try:
            result = self._transfer(volume_id, move_id, source, target)
        except Exception as exc:
            LOG.exception("copying volume %s to %s failed", volume_id, target.name)
            with self.session() as s:
                s.execute(update(vm.Volume).where(vm.Volume.id == volume_id).values(
                    migration_status="error", updated_at=utcnow()))
            raise vexc.VolumeDataError(reason=f"volume {volume_id} could not be copied to "
                                              f"backend {target.name}: {exc}") from exc
        with self.session() as s:
            copy = self._copy_row(s, volume_id, move_id, vm.TARGET)
            copy.state, copy.checksum = vm.COPIED, result["checksum"]
            copy.bytes, copy.bytes_sent = result["bytes"], result["bytes_sent"]
            copy.updated_at = utcnow()
            s.execute(update(vm.Volume).where(vm.Volume.id == volume_id).values(
                last_transfer={**result, "move_id": move_id, "from_backend": source.name,
                               "to_backend": target.name}))
            return self._result(copy)

    # -- switching, confirming, reverting ---------------------------------------------
    def move_switch(self, ctx: RequestContext, volume_id: str, move_id: str
                    ) -> dict[str, Any]:
        with self.session() as s:
            row = self.load(s, ctx, volume_id)
            copy = self._copy_row(s, volume_id, move_id, vm.TARGET)
            if copy is None:
                raise vexc.VolumeCopyNotFound(volume_id=volume_id, move_id=move_id)
            if copy.state == vm.LIVE:
                return self._body(s, row)
            if copy.state != vm.COPIED:
                raise vexc.InvalidVolume(reason=f"the copy of volume {volume_id} for move "
                                                f"{move_id} is {copy.state}, not copied")
            source = vb.backend(row.backend)
            changed = s.execute(update(vm.Volume).where(
                vm.Volume.id == volume_id, vm.Volume.backend == source.name).values(
                backend=copy.backend, migration_status=vm.SUCCESS,
                updated_at=utcnow())).rowcount
            if changed != 1:
                raise vexc.InvalidVolume(reason=f"volume {volume_id} changed backend "
                                                "during its move")
            s.add(vm.VolumeCopy(volume_id=volume_id, move_id=move_id, role=vm.SOURCE,
                                backend=source.name, path=source.path(volume_id),
                                state=vm.RETAINED, checksum=copy.checksum, bytes=copy.bytes))
            copy.state, copy.updated_at = vm.LIVE, utcnow()
            s.flush()
            s.refresh(row)
            return self._body(s, row)

    def move_confirm(self, ctx: RequestContext, volume_id: str, move_id: str) -> None:
        with self.session() as s:
            copies = {c.role: c for c in s.scalars(select(vm.VolumeCopy).where(
                vm.VolumeCopy.volume_id == volume_id, vm.VolumeCopy.move_id == move_id))}
        source, target = copies.get(vm.SOURCE), copies.get(vm.TARGET)
        if source is not None:
            _unlink(source.path)
        elif target is not None and target.state != vm.LIVE:
            _unlink(target.path)  # copied but never used
        self._forget(volume_id, move_id)

    def move_revert(self, ctx: RequestContext, volume_id: str, move_id: str) -> None:
        with self.session() as s:
            copies = {c.role: c for c in s.scalars(select(vm.VolumeCopy).where(
                vm.VolumeCopy.volume_id == volume_id, vm.VolumeCopy.move_id == move_id))}
            source, target = copies.get(vm.SOURCE), copies.get(vm.TARGET)
            if target is None:
                return
            values: dict[str, Any] = {"migration_status": None, "updated_at": utcnow()}
            query = update(vm.Volume).where(vm.Volume.id == volume_id)
            if source is not None:
                values["backend"] = source.backend
                query = query.where(vm.Volume.backend.in_([target.backend, source.backend]))
            s.execute(query.values(**values))
        _unlink(target.path)
        self._forget(volume_id, move_id)

    def _forget(self, volume_id: str, move_id: str) -> None:
        with self.session() as s:
            s.execute(delete(vm.VolumeCopy).where(vm.VolumeCopy.volume_id == volume_id,
                                                  vm.VolumeCopy.move_id == move_id))

    def move_copies(self, ctx: RequestContext) -> list[dict[str, Any]]:
        with self.session() as s:
            return [copy_view(row) for row in s.scalars(
                select(vm.VolumeCopy).order_by(vm.VolumeCopy.created_at, vm.VolumeCopy.id))]

    # -- os-migrate_volume ------------------------------------------------------------
    def migrate(self, ctx: RequestContext, volume_id: str, host: str,
                force_host_copy: bool = False, lock_volume: bool = False,
                wait: bool = False) -> None:
        """Start an administrator's migration (Cinder answers 202 and works on).

        The volume is ``maintenance`` while its bytes travel, so nothing attaches
        it, writes it or deletes it; ``migration_status`` ends ``success`` (old
        file deleted) or ``error`` (new file deleted, the volume where it was).
        """
        if not isinstance(host, str) or not host:
            raise vexc.InvalidInput(reason="host must be given")
        target = vb.parse_host(host)
        with self.session() as s:
            row = self.load(s, ctx, volume_id)
        if row.backend == target.name:
            raise vexc.InvalidHost(reason="Destination host must be different than the "
                                          "current host.")
        move_id = str(uuid.uuid4())
        with self.session() as s:
            row = self.cas(s, ctx, volume_id, expect=[vm.AVAILABLE], action="migrated",
                           status=vm.MAINTENANCE, migration_status=vm.MIGRATING)
            if self.snapshot_count(s, volume_id):  # type: ignore[attr-defined]
                # Cinder's rule: the snapshots would stay behind on the old backend
                raise vexc.InvalidVolume(reason="Volume must not have snapshots.")
            s.add(vm.VolumeCopy(volume_id=volume_id, move_id=move_id, role=vm.MIGRATION,
                                backend=target.name, path=target.path(volume_id),
                                state=vm.COPYING))
        source = vb.backend(row.backend)

        def work() -> None:
            self._finish_migration(volume_id, move_id, source, target)
        if wait:
            work()
        else:
            background(f"migrate-volume-{volume_id}", work)

    def _finish_migration(self, volume_id: str, move_id: str, source: vb.Backend,
                          target: vb.Backend) -> None:
        try:
            result = self._transfer(volume_id, move_id, source, target)
        except Exception:
            LOG.exception("migrating volume %s to %s failed", volume_id, target.name)
            _unlink(target.path(volume_id))
            with self.session() as s:
                s.execute(update(vm.Volume).where(
                    vm.Volume.id == volume_id, vm.Volume.status == vm.MAINTENANCE).values(
                    status=vm.AVAILABLE, migration_status="error", updated_at=utcnow()))
            self._forget(volume_id, move_id)
            return
        with self.session() as s:
            switched = s.execute(update(vm.Volume).where(
                vm.Volume.id == volume_id, vm.Volume.status == vm.MAINTENANCE,
                vm.Volume.backend == source.name).values(
                status=vm.AVAILABLE, backend=target.name, migration_status=vm.SUCCESS,
                last_transfer={**result, "move_id": move_id, "from_backend": source.name,
                               "to_backend": target.name},
                updated_at=utcnow())).rowcount == 1
        # an administrator who reset the volume meanwhile keeps it where it was
        _unlink(source.path(volume_id) if switched else target.path(volume_id))
        self._forget(volume_id, move_id)
