"""The network service's errors, named as Neutron names them.

The class name is the ``type`` of Neutron's error envelope, and survives an RPC
round trip as ``RemoteError.exc_type``, so callers on either side can tell a
missing port from a port in use without parsing messages.
"""

from __future__ import annotations

from transcell import exception


class SubnetNotFound(exception.NotFound):
    msg_fmt = "Subnet %(subnet_id)s could not be found."


class SecurityGroupNotFound(exception.NotFound):
    msg_fmt = "Security group %(id)s does not exist"


class PortBindingNotFound(exception.NotFound):
    msg_fmt = "Binding for port %(port_id)s for host %(host)s could not be found."


class ExtensionNotFound(exception.NotFound):
    msg_fmt = "Extension with alias %(alias)s does not exist"


class TagNotFound(exception.NotFound):
    msg_fmt = "Tag %(tag)s could not be found for %(resource)s %(resource_id)s."


class PolicyNotAuthorized(exception.Forbidden):
    msg_fmt = "rule:%(action)s is disallowed by policy"


class InvalidInput(exception.Invalid):
    msg_fmt = "Invalid input for operation: %(error_message)s."


class InvalidIpForSubnet(exception.Invalid):
    msg_fmt = "IP address %(ip_address)s is not a valid IP for the specified subnet."


class InvalidIpForNetwork(exception.Invalid):
    msg_fmt = ("IP address %(ip_address)s is not a valid IP for any of the subnets on "
               "the specified network.")


class InvalidAllocationPool(exception.Invalid):
    msg_fmt = "The allocation pool %(pool)s is not valid."


class PortBindingError(exception.Invalid):
    msg_fmt = "Port %(port_id)s cannot be bound: %(reason)s"


class PortBound(exception.Conflict):
    msg_fmt = ("Unable to complete operation on port %(port_id)s, port is already bound "
               "to host %(host)s.")


class NetworkInUse(exception.Conflict):
    msg_fmt = ("Unable to complete operation on network %(net_id)s. There are one or "
               "more ports still in use on the network.")


class SubnetInUse(exception.Conflict):
    msg_fmt = ("Unable to complete operation on subnet %(subnet_id)s: One or more ports "
               "have an IP allocation from this subnet.")


class PortInUse(exception.Conflict):
    msg_fmt = ("Unable to complete operation on port %(port_id)s for network %(net_id)s. "
               "Port already has an attached device %(device_id)s.")


class MacAddressInUse(exception.Conflict):
    msg_fmt = ("Unable to complete operation for network %(net_id)s. The mac address "
               "%(mac)s is in use.")


class IpAddressAlreadyAllocated(exception.Conflict):
    msg_fmt = "IP address %(ip)s already allocated in subnet %(subnet_id)s"


class IpAddressGenerationFailure(exception.Conflict):
    msg_fmt = "No more IP addresses available on network %(net_id)s."


class OverlappingAllocationPools(exception.Conflict):
    msg_fmt = ("Found overlapping allocation pools: %(pool_1)s %(pool_2)s for subnet "
               "%(subnet_cidr)s.")


class GatewayConflictWithAllocationPools(exception.Conflict):
    msg_fmt = "Gateway ip %(ip_address)s conflicts with allocation pool %(pool)s."


class PortBindingAlreadyExists(exception.Conflict):
    msg_fmt = "Binding for port %(port_id)s on host %(host)s already exists."


class PortBindingAlreadyActive(exception.Conflict):
    msg_fmt = "Binding for port %(port_id)s on host %(host)s is already active."


class NetworkAutoAllocationFailed(exception.Conflict):
    msg_fmt = ("Unable to automatically allocate a network for project %(project_id)s: "
               "%(reason)s")


#: Generic transcell errors have no Neutron name of their own; their envelope
#: type is the HTTP error Neutron's WSGI layer would have raised.
HTTP_TYPES = {
    400: "HTTPBadRequest",
    401: "HTTPUnauthorized",
    403: "HTTPForbidden",
    404: "HTTPNotFound",
    405: "HTTPMethodNotAllowed",
    409: "HTTPConflict",
    500: "HTTPInternalServerError",
}

_GENERIC = (exception.TranscellError, exception.Invalid, exception.ValidationError,
            exception.NotAuthenticated, exception.Forbidden, exception.NotFound,
            exception.Conflict)


def neutron_type(exc: exception.TranscellError) -> str:
    if type(exc) in _GENERIC:
        return HTTP_TYPES.get(exc.code, "NeutronException")
    return type(exc).__name__
