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


class RevisionNumberConstraintFailed(exception.TranscellError):
    code = 412
    msg_fmt = "Constrained to %(constraint)s, but current revision is %(current)s"


class SegmentNotFound(exception.NotFound):
    msg_fmt = "Segment %(segment_id)s could not be found."


class SegmentInUse(exception.Conflict):
    msg_fmt = "Segment %(segment_id)s cannot be deleted: %(reason)s."


class SubnetsNotAllAssociatedWithSegments(exception.Invalid):
    msg_fmt = ("Network %(network_id)s has segments, so each of its subnets must name "
               "the segment it belongs to (segment_id).")


class NetworkIdsDontMatch(exception.Invalid):
    msg_fmt = ("Segment %(segment_id)s belongs to network %(segment_network)s, not to the "
               "subnet's network %(subnet_network)s.")


class SubnetSegmentAssociationChangeNotAllowed(exception.Invalid):
    msg_fmt = ("Subnet %(subnet_id)s already belongs to segment %(segment_id)s and cannot "
               "move to another.")


class NoUpdateSubnetWhenMultipleSegmentsOnNetwork(exception.Invalid):
    msg_fmt = ("Network %(network_id)s has several segments: an existing subnet can be put "
               "on a segment only while its network has a single one.")


class HostNotConnectedToAnySegment(exception.Conflict):
    msg_fmt = ("Host %(host)s (cell %(cell)s) is not connected to any segment of routed "
               "network %(network_id)s: its segments reach cells %(reach)s.")


class HostNotCompatibleWithFixedIps(exception.Conflict):
    msg_fmt = ("Port %(port_id)s cannot be bound to host %(host)s (cell %(cell)s): its "
               "fixed IPs %(addresses)s are on segment %(segment_id)s of network "
               "%(network_id)s, which reaches cells %(reach)s only.")


class PortAddressTaken(exception.Conflict):
    msg_fmt = ("Address %(ip_address)s cannot be given back to port %(port_id)s: port "
               "%(holder)s took it meanwhile.")


class SecurityGroupRuleNotFound(exception.NotFound):
    msg_fmt = "Security group rule %(id)s does not exist"


class SecurityGroupDefaultAlreadyExists(exception.Conflict):
    msg_fmt = "The project already has its default security group: the name is reserved."


class SecurityGroupConflict(exception.Conflict):
    msg_fmt = "Security group conflict: %(reason)s."


class SecurityGroupCannotUpdateDefault(exception.Conflict):
    msg_fmt = "The default security group cannot be renamed."


class SecurityGroupCannotRemoveDefault(exception.Conflict):
    msg_fmt = "The default security group cannot be deleted."


class SecurityGroupInUse(exception.Conflict):
    msg_fmt = "Security group %(id)s %(reason)s."


class SecurityGroupRuleExists(exception.Conflict):
    msg_fmt = "The security group already has this rule: rule %(rule_id)s."


class SecurityGroupRuleInvalidProtocol(exception.Invalid):
    msg_fmt = "Security group rule protocol %(protocol)s is not supported: use %(values)s."


class SecurityGroupInvalidPortValue(exception.Invalid):
    msg_fmt = "Invalid value for port %(port)s: a port is an integer from 1 to 65535."


class SecurityGroupInvalidPortRange(exception.Invalid):
    msg_fmt = ("For TCP/UDP protocols, port_range_min must be <= port_range_max, and a port "
               "range needs both.")


class SecurityGroupProtocolRequiredWithPorts(exception.Invalid):
    msg_fmt = "A rule with a port range must name its protocol."


class SecurityGroupInvalidProtocolForPortRange(exception.Invalid):
    msg_fmt = ("Protocol %(protocol)s has no ports: only TCP, UDP, UDPLITE, SCTP and DCCP "
               "rules take a port range (ICMP rules a type and code).")


class SecurityGroupInvalidIcmpValue(exception.Invalid):
    msg_fmt = ("Invalid value for ICMP %(field)s (%(attr)s): %(value)s. It must be from 0 "
               "to 255.")


class SecurityGroupMissingIcmpType(exception.Invalid):
    msg_fmt = ("ICMP code (port-range-max) %(value)s is provided but ICMP type "
               "(port-range-min) is missing.")


class SecurityGroupRemoteGroupAndRemoteIpPrefix(exception.Invalid):
    msg_fmt = "A rule's remote side is either remote_ip_prefix or remote_group_id, not both."


class SecurityGroupRuleParameterConflict(exception.Invalid):
    msg_fmt = ("Conflicting value ethertype %(ethertype)s for CIDR %(cidr)s: the prefix is "
               "of the other IP version.")


class SecurityGroupEthertypeConflictWithProtocol(exception.Invalid):
    msg_fmt = "Protocol %(protocol)s is an IPv6 protocol and cannot go with %(ethertype)s."


#: Generic transcell errors have no Neutron name of their own; their envelope
#: type is the HTTP error Neutron's WSGI layer would have raised.
HTTP_TYPES = {
    400: "HTTPBadRequest",
    401: "HTTPUnauthorized",
    403: "HTTPForbidden",
    404: "HTTPNotFound",
    405: "HTTPMethodNotAllowed",
    409: "HTTPConflict",
    412: "HTTPPreconditionFailed",
    500: "HTTPInternalServerError",
}

_GENERIC = (exception.TranscellError, exception.Invalid, exception.ValidationError,
            exception.NotAuthenticated, exception.Forbidden, exception.NotFound,
            exception.Conflict)


def neutron_type(exc: exception.TranscellError) -> str:
    if type(exc) in _GENERIC:
        return HTTP_TYPES.get(exc.code, "NeutronException")
    return type(exc).__name__


class RouterNotFound(exception.NotFound):
    msg_fmt = "Router %(router_id)s could not be found"


class RouterInUse(exception.Conflict):
    msg_fmt = "Router %(router_id)s %(reason)s"


class RouterInterfaceNotFound(exception.NotFound):
    msg_fmt = "Router %(router_id)s does not have an interface with id %(port_id)s"


class RouterInterfaceNotFoundForSubnet(exception.NotFound):
    msg_fmt = "Router %(router_id)s has no interface on subnet %(subnet_id)s"


class BadRequest(exception.Invalid):
    msg_fmt = "Bad %(resource)s request: %(msg)s."


class L3PortInUse(exception.Conflict):
    msg_fmt = ("Port %(port_id)s cannot be deleted directly via the port API: has device "
               "owner %(device_owner)s.")


class SubnetPoolNotFound(exception.NotFound):
    msg_fmt = "Subnet pool %(subnetpool_id)s could not be found."
