"""Attachments (Cinder 3.27+): reserve, connect, complete, delete.

A host gets a volume's connection info only if its cell reaches the volume's
backend: the check runs before anything is written, so an unreachable host
changes nothing. Each change first takes the volume row with a conditional
UPDATE on the statuses that allow it; the volume's status is then derived from
the attachments it is left with, in the same transaction.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from transcell import cell as cells
from transcell import exception
from transcell.context import RequestContext
from transcell.db.types import utcnow
from transcell.volume import backends as vb
from transcell.volume import exceptions as vexc
from transcell.volume import models as vm
from transcell.volume import views
from transcell.volume.records import Records

ATTACHABLE = (vm.AVAILABLE, vm.RESERVED, vm.ATTACHING, vm.IN_USE)
MODES = ("rw", "ro")


class Attachments(Records):
    def _host_cell(self, connector: dict[str, Any]) -> tuple[str, str]:
        if not isinstance(connector, dict):
            raise vexc.InvalidInput(reason="connector must be an object")
        host = connector.get("host")
        if not isinstance(host, str) or not host:
            raise vexc.InvalidInput(reason="connector must name the host ('host')")
        try:
            return host, cells.cell_of_host(host).name
        except exception.ComputeHostNotFound:
            raise vexc.InvalidInput(reason=f"connector host {host} is not a compute host "
                                           f"of any cell") from None

    def _check_reach(self, row: vm.Volume, connector: dict[str, Any]) -> str:
        host, cell_name = self._host_cell(connector)
        backend = vb.backend(row.backend)
        if not backend.reaches(cell_name):
            raise vexc.VolumeBackendUnreachable(
                volume_id=row.id, backend=backend.name, cell=cell_name, host=host,
                reach=", ".join(backend.cell_names()))
        return host

    def _load_attachment(self, s: Session, ctx: RequestContext, attachment_id: str
                         ) -> tuple[vm.VolumeAttachment, vm.Volume]:
        att = s.get(vm.VolumeAttachment, attachment_id) \
            if isinstance(attachment_id, str) else None
        if att is None:
            raise vexc.VolumeAttachmentNotFound(attachment_id=attachment_id)
        row = s.get(vm.Volume, att.volume_id)
        if row is None or not self.visible(ctx, row):
            raise vexc.VolumeAttachmentNotFound(attachment_id=attachment_id)
        return att, row

    def _view(self, row: vm.Volume, att: vm.VolumeAttachment) -> dict[str, Any]:
        info = None
        if att.connector and att.attached_host:
            try:
                if vb.backend(row.backend).reaches(cells.cell_of_host(att.attached_host).name):
                    info = views.connection_info(row, att)
            except exception.TranscellError:
                info = None
        return views.attachment(row, att, info)

    @staticmethod
    def _settle(row: vm.Volume, remaining: list[vm.VolumeAttachment]) -> None:
        """The volume's status as its attachments make it (unless it is elsewhere)."""
        if row.status not in ATTACHABLE:
            return
        if any(att.status == vm.ATTACHED for att in remaining):
            row.status, row.attach_status = vm.IN_USE, vm.ATTACHED
        elif any(att.status == vm.ATTACHING for att in remaining):
            row.status, row.attach_status = vm.ATTACHING, vm.DETACHED
        elif remaining:
            row.status, row.attach_status = vm.RESERVED, vm.DETACHED
        else:
            row.status, row.attach_status = vm.AVAILABLE, vm.DETACHED
        row.updated_at = utcnow()

    def attachment_create(self, ctx: RequestContext, volume_id: str, instance_uuid: str,
                          connector: dict[str, Any] | None = None, mode: str = "rw"
                          ) -> dict[str, Any]:
        if not isinstance(instance_uuid, str) or not instance_uuid:
            raise vexc.InvalidInput(reason="instance_uuid must be given")
        if mode not in MODES:
            raise vexc.InvalidInput(reason=f"mode must be one of {', '.join(MODES)}")
        with self.session() as s:
            row = self.load(s, ctx, volume_id)
        host = self._check_reach(row, connector) if connector is not None else None
        with self.session() as s:
            row = self.cas(s, ctx, volume_id, expect=ATTACHABLE, migrating=None,
                           action="attached")
            if row.status == vm.MAINTENANCE:  # pragma: no cover - excluded by expect
                raise vexc.InvalidVolume(reason="volume is under maintenance")
            existing = self.attachments_of(s, volume_id)
            others = sorted({att.instance_uuid for att in existing
                             if att.instance_uuid != instance_uuid})
            if others and not row.multiattach:
                raise vexc.InvalidVolume(
                    reason=f"volume {volume_id} is already attached to instance "
                           f"{others[0]} and is not multiattach")
            att = vm.VolumeAttachment(
                volume_id=volume_id, instance_uuid=instance_uuid,
                status=vm.ATTACHING if connector is not None else vm.RESERVED,
                attach_mode="ro" if row.readonly else mode, connector=connector,
                attached_host=host,
                mountpoint=(connector or {}).get("mountpoint"))
            s.add(att)
            s.flush()
            self._settle(row, [*existing, att])
            return self._view(row, att)

    def attachment_update(self, ctx: RequestContext, attachment_id: str,
                          connector: dict[str, Any]) -> dict[str, Any]:
        if connector is None:
            raise vexc.InvalidInput(reason="a connector is required to update an attachment")
        with self.session() as s:
            _att, row = self._load_attachment(s, ctx, attachment_id)
        host = self._check_reach(row, connector)
        with self.session() as s:
            row = self.cas(s, ctx, row.id, expect=ATTACHABLE, migrating=None,
                           action="attached")
            att, row = self._load_attachment(s, ctx, attachment_id)
            att.connector, att.attached_host = connector, host
            att.mountpoint = connector.get("mountpoint") or att.mountpoint
            if att.status == vm.RESERVED:
                att.status = vm.ATTACHING
            s.flush()
            self._settle(row, self.attachments_of(s, row.id))
            return self._view(row, att)

    def attachment_complete(self, ctx: RequestContext, attachment_id: str) -> None:
        """Mark the attachment attached and its volume in-use, connector or not, as Cinder's
        os-complete does: Nova completes the attachment of a volume it attaches to a
        shelved-offloaded server, which has no host to connect from until it is unshelved
        (the unshelve then connects the volume on its new host)."""
        with self.session() as s:
            _att, row = self._load_attachment(s, ctx, attachment_id)
        with self.session() as s:
            row = self.cas(s, ctx, row.id, expect=ATTACHABLE, migrating=None,
                           action="attached")
            att, row = self._load_attachment(s, ctx, attachment_id)
            if att.status == vm.ATTACHED:
                return
            att.status, att.attached_at = vm.ATTACHED, utcnow()
            s.flush()
            self._settle(row, self.attachments_of(s, row.id))

    def attachment_delete(self, ctx: RequestContext, attachment_id: str) -> list[dict]:
        """Returns the volume's attachments left, as Cinder's DELETE answers."""
        with self.session() as s:
            _att, row = self._load_attachment(s, ctx, attachment_id)
        with self.session() as s:
            row = self.cas(s, ctx, row.id, migrating=None, action="detached")
            att, row = self._load_attachment(s, ctx, attachment_id)
            s.delete(att)
            s.flush()
            remaining = self.attachments_of(s, row.id)
            self._settle(row, remaining)
            return [self._view(row, left) for left in remaining]

    def attachment_get(self, ctx: RequestContext, attachment_id: str) -> dict[str, Any]:
        with self.session() as s:
            att, row = self._load_attachment(s, ctx, attachment_id)
            return self._view(row, att)

    def attachment_list(self, ctx: RequestContext, volume_id: str | None = None,
                        instance_id: str | None = None, all_projects: bool = False
                        ) -> list[dict[str, Any]]:
        with self.session() as s:
            query = select(vm.VolumeAttachment, vm.Volume).join(
                vm.Volume, vm.Volume.id == vm.VolumeAttachment.volume_id).order_by(
                vm.VolumeAttachment.created_at.desc(), vm.VolumeAttachment.id)
            if not (all_projects and ctx.is_admin):
                query = query.where(vm.Volume.project_id == ctx.project_id)
            if volume_id:
                query = query.where(vm.VolumeAttachment.volume_id == volume_id)
            if instance_id:
                query = query.where(vm.VolumeAttachment.instance_uuid == instance_id)
            return [self._view(row, att) for att, row in s.execute(query)]
