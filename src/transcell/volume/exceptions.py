"""The volume service's errors, named as Cinder names them.

The class name travels in the ``X-Transcell-Error-Type`` header of an error
response (Cinder's envelope has no place for it), so the HTTP client raises the
same class the service raised and callers can tell, say, an unreachable backend
from a volume in the wrong state without parsing messages.
"""

from __future__ import annotations

from transcell import exception


class VolumeNotFound(exception.NotFound):
    msg_fmt = "Volume %(volume_id)s could not be found."


class VolumeAttachmentNotFound(exception.NotFound):
    msg_fmt = "Volume attachment %(attachment_id)s could not be found."


class VolumeTypeNotFound(exception.NotFound):
    msg_fmt = "Volume type %(volume_type_id)s could not be found."


class VolumeTypeNotFoundByName(exception.NotFound):
    msg_fmt = "Volume type with name %(volume_type_name)s could not be found."


class VolumeCopyNotFound(exception.NotFound):
    msg_fmt = "No copy of volume %(volume_id)s was made for move %(move_id)s."


class MetadataNotFound(exception.NotFound):
    msg_fmt = "Volume %(volume_id)s has no metadata with key %(key)s."


class SnapshotNotFound(exception.NotFound):
    msg_fmt = "Snapshot %(snapshot_id)s could not be found."


class BackupNotFound(exception.NotFound):
    msg_fmt = "Backup %(backup_id)s could not be found."


class InvalidVolume(exception.Invalid):
    """Cinder's answer to an operation the volume's state does not allow: a 400."""

    msg_fmt = "Invalid volume: %(reason)s"


class InvalidSnapshot(exception.Invalid):
    msg_fmt = "Invalid snapshot: %(reason)s"


class InvalidInput(exception.Invalid):
    msg_fmt = "Invalid input received: %(reason)s"


class InvalidHost(exception.Invalid):
    msg_fmt = "Invalid host: %(reason)s"


class VolumeBackendUnreachable(exception.Invalid):
    """A host asked for a connection to a volume whose backend its cell cannot reach."""

    msg_fmt = ("Volume %(volume_id)s is on backend %(backend)s, which cell %(cell)s "
               "(host %(host)s) cannot reach; the backend reaches %(reach)s.")


class PolicyNotAuthorized(exception.Forbidden):
    msg_fmt = "Policy doesn't allow %(action)s to be performed."


class VolumeDataError(exception.TranscellError):
    code = 500
    msg_fmt = "Volume data operation failed: %(reason)s"


def by_name(name: str | None) -> type[exception.TranscellError] | None:
    """The class an error response named, if this module or transcell's defines it."""
    for module in (globals(), vars(exception)):
        found = module.get(name or "")
        if isinstance(found, type) and issubclass(found, exception.TranscellError):
            return found
    return None
