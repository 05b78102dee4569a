"""Errors that carry their HTTP meaning.

Services raise these; API layers turn them into their own error envelope
(Nova's fault body, Glance's or Neutron's), so a message written once reads
the same whichever API reports it.
"""

from __future__ import annotations


class TranscellError(Exception):
    code = 500
    msg_fmt = "An unknown error occurred."

    def __init__(self, message: str | None = None, **kwargs):
        if message is None:
            try:
                message = self.msg_fmt % kwargs
            except (KeyError, TypeError):
                message = self.msg_fmt
        super().__init__(message)
        self.kwargs = kwargs

    @property
    def message(self) -> str:
        return str(self)


class Invalid(TranscellError):
    code = 400
    msg_fmt = "Invalid input: %(reason)s"


class ValidationError(Invalid):
    msg_fmt = "Invalid input for field/attribute %(field)s. %(reason)s"


class NotAuthenticated(TranscellError):
    code = 401
    msg_fmt = "The request you have made requires authentication."


class Forbidden(TranscellError):
    code = 403
    msg_fmt = "Policy doesn't allow %(action)s to be performed."


class NotFound(TranscellError):
    code = 404
    msg_fmt = "Resource could not be found."


class InstanceNotFound(NotFound):
    msg_fmt = "Instance %(instance_id)s could not be found."


class FlavorNotFound(NotFound):
    msg_fmt = "Flavor %(flavor_id)s could not be found."


class ImageNotFound(NotFound):
    msg_fmt = "Image %(image_id)s could not be found."


class NetworkNotFound(NotFound):
    msg_fmt = "Network %(network_id)s could not be found."


class PortNotFound(NotFound):
    msg_fmt = "Port %(port_id)s could not be found."


class KeypairNotFound(NotFound):
    msg_fmt = "Keypair %(name)s not found for user %(user_id)s"


class CellNotFound(NotFound):
    msg_fmt = "Cell %(cell)s doesn't have any mapping."


class ComputeHostNotFound(NotFound):
    msg_fmt = "Compute host %(host)s could not be found."


class Conflict(TranscellError):
    code = 409
    msg_fmt = "There was a conflict when trying to complete your request."


class InstanceInvalidState(Conflict):
    msg_fmt = ("Cannot '%(action)s' instance %(instance_uuid)s while it is in "
               "%(attr)s %(state)s")


class InstanceIsLocked(Conflict):
    msg_fmt = "Instance %(instance_uuid)s is locked"


class InstanceNotReady(Conflict):
    msg_fmt = "Instance %(instance_id)s is not ready"


class InstancePasswordSetFailed(Conflict):
    msg_fmt = "Failed to set admin password on %(instance)s because %(reason)s"


class OverQuota(TranscellError):
    code = 403
    msg_fmt = "Quota exceeded: %(reason)s"


class NoValidHost(TranscellError):
    code = 400
    msg_fmt = "No valid host was found. %(reason)s"


class RPCTimeout(TranscellError):
    code = 503
    msg_fmt = "Timed out waiting for a reply to %(method)s on %(topic)s."


class RPCVersionUnsupported(TranscellError):
    """The served side is older than the sender (or of another major version)."""

    code = 500
    msg_fmt = ("The server of %(topic)s that received %(method)s does not accept RPC "
               "version %(version)s.")


class RemoteError(TranscellError):
    """An exception raised by the other end of an RPC call, carried back by name."""

    msg_fmt = "Remote error: %(exc_type)s %(value)s"

    def __init__(self, exc_type: str, value: str, traceback: str = ""):
        super().__init__(exc_type=exc_type, value=value)
        self.exc_type = exc_type
        self.value = value
        self.traceback = traceback


class PlacementError(TranscellError):
    code = 502
    msg_fmt = "Placement request failed: %(reason)s"


class DiskError(TranscellError):
    msg_fmt = "Disk operation failed: %(reason)s"


class ChecksumMismatch(TranscellError):
    """Stored or transferred bytes do not hash to what was recorded: never use them."""

    code = 500
    msg_fmt = "Checksum mismatch for %(what)s: expected %(expected)s, got %(actual)s."


class UnsupportedMediaType(TranscellError):
    code = 415
    msg_fmt = "Unsupported media type %(content_type)s."


class AllocationConflict(Conflict):
    msg_fmt = "Allocations of consumer %(consumer)s changed concurrently: %(reason)s"


class ResourceProviderNotFound(NotFound):
    msg_fmt = "Resource provider %(uuid)s could not be found."


class MoveBlocked(Invalid):
    """A move whose volumes or ports cannot follow the server to the target cell.

    Raised before anything stops, with every reason, so the operator learns
    what to change (a backend, a segment, re-addressing) from the error alone.
    """

    msg_fmt = "The server cannot move to %(target)s: %(reasons)s"
