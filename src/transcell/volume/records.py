"""Every query the volume service runs on its volumes, in one place.

A state change is a conditional UPDATE naming the state it expects; when no
row matches, the volume is read again to say why (gone, or in another state),
so racing requests get Cinder's answers instead of a silent overwrite.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from transcell.context import RequestContext
from transcell.db.session import session_for
from transcell.db.types import utcnow
from transcell.volume import exceptions as vexc
from transcell.volume import models as vm


class Records:
    """Database access of the volume service (mixed into ``VolumeService``)."""

    db_url: str

    @contextmanager
    def session(self) -> Iterator[Session]:
        with session_for(self.db_url) as s:
            yield s

    @staticmethod
    def visible(ctx: RequestContext, row: vm.Volume) -> bool:
        return ctx.is_admin or row.project_id == ctx.project_id

    def load(self, s: Session, ctx: RequestContext, volume_id: str) -> vm.Volume:
        row = s.get(vm.Volume, volume_id) if isinstance(volume_id, str) else None
        if row is None or not self.visible(ctx, row):
            raise vexc.VolumeNotFound(volume_id=volume_id)
        return row

    def _body(self, s: Session, row: vm.Volume) -> dict[str, Any]:
        from transcell.volume import views
        return views.volume(row, self.attachments_of(s, row.id))

    @staticmethod
    def attachments_of(s: Session, volume_id: str) -> list[vm.VolumeAttachment]:
        return list(s.scalars(select(vm.VolumeAttachment)
                              .where(vm.VolumeAttachment.volume_id == volume_id)
                              .order_by(vm.VolumeAttachment.created_at,
                                        vm.VolumeAttachment.id)))

    def cas(self, s: Session, ctx: RequestContext, volume_id: str, *,
            expect: Iterable[str] | None = None, migrating: bool | None = False,
            action: str = "", **values: Any) -> vm.Volume:
        """Set ``values`` only if the volume is in one of ``expect`` (and, unless
        ``migrating`` is None, is or is not under migration); else raise InvalidVolume.

        The UPDATE runs first in the transaction, so on PostgreSQL and MariaDB it
        also locks the row, and SQLite takes its write lock before any read: what
        the caller reads next cannot change under it.
        """
        stmt = update(vm.Volume).where(vm.Volume.id == volume_id)
        if not ctx.is_admin:  # never touch a volume the caller cannot see
            stmt = stmt.where(vm.Volume.project_id == ctx.project_id)
        expected = list(expect) if expect is not None else None
        if expected is not None:
            stmt = stmt.where(vm.Volume.status.in_(expected))
        if migrating is False:
            stmt = stmt.where((vm.Volume.migration_status.is_(None))
                              | (vm.Volume.migration_status != vm.MIGRATING))
        elif migrating is True:
            stmt = stmt.where(vm.Volume.migration_status == vm.MIGRATING)
        values.setdefault("updated_at", utcnow())
        changed = s.execute(stmt.values(**values).execution_options(
            synchronize_session=False)).rowcount
        row = self.load(s, ctx, volume_id)
        if changed != 1:
            if migrating is False and row.migration_status == vm.MIGRATING:
                raise vexc.InvalidVolume(reason=f"volume {volume_id} is being migrated; "
                                                f"it cannot be {action or 'changed'} now")
            wanted = " or ".join(expected or ["?"])
            raise vexc.InvalidVolume(
                reason=f"volume {volume_id} status must be {wanted} to be "
                       f"{action or 'changed'}, but it is {row.status}")
        s.refresh(row)
        return row
