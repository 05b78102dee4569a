"""Microversion negotiation exactly as Nova does it.

Both the standard ``OpenStack-API-Version: compute X.Y`` header and the
legacy ``X-OpenStack-Nova-API-Version`` are read and echoed; no header means
the minimum, ``latest`` means the maximum, outside the range is 406.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

import microversion_parse

from transcell import exception

MIN_VERSION = "2.1"
#: Raised only as far as every served resource's shapes up to it are implemented:
#: up to 2.91 they all are, including servers and services of cells that are down
#: (2.69), a chosen host and hypervisor on server create (2.74), image caching on an
#: aggregate's hosts (2.81), updating a volume attachment in place (2.85), validated
#: flavor extra specs (2.86), rescuing a volume-backed server (2.87), hypervisors
#: without usage figures (2.88), attachments known by their attachment and mapping
#: ids (2.89), a server's own hostname (2.90) and unshelving onto a named host
#: (2.91). Routes Nova added in this range for resources transcell does not serve
#: (server topology) stay 404, as every such resource does at every version.
MAX_VERSION = "2.91"

SERVICE_TYPE = "compute"
LEGACY_HEADER = "X-OpenStack-Nova-API-Version"

_FORMAT = re.compile(r"^([1-9]\d*)\.([1-9]\d*|0)$")
#: More digits than any version will have; longer numbers are out of range unread.
_MAX_DIGITS = 9
#: How much of a client's version string an error message repeats.
_SHOWN = 32


def _shown(text: str) -> str:
    return text if len(text) <= _SHOWN else text[:_SHOWN] + "..."


@dataclass(frozen=True, order=True)
class APIVersion:
    major: int
    minor: int

    @classmethod
    def parse(cls, text: str) -> APIVersion:
        found = _FORMAT.match(text.strip())
        if not found:
            raise exception.Invalid(f"API Version String {_shown(text)} is of invalid "
                                    "format. Must be of format MajorNum.MinorNum.")
        major, minor = found.groups()
        if len(major) > _MAX_DIGITS or len(minor) > _MAX_DIGITS:
            # well formed, but far past any version; int() of thousands of digits is refused
            raise NotAcceptableVersion(f"Version {_shown(text)} is not supported by the "
                                       f"API. Minimum is {MIN_VERSION} and maximum is "
                                       f"{MAX_VERSION}.")
        return cls(int(major), int(minor))

    def matches(self, min_version: str | None = None, max_version: str | None = None
                ) -> bool:
        """True when this version is inside [min_version, max_version] (either may be open)."""
        if min_version and self < _bound(min_version):
            return False
        if max_version and self > _bound(max_version):
            return False
        return True

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}"


@functools.lru_cache(maxsize=512)
def _bound(text: str) -> APIVersion:
    """A version the code compares against, parsed once: a page of servers asks
    ``matches`` tens of thousands of times with a few dozen distinct strings."""
    return APIVersion.parse(text)


class NotAcceptableVersion(exception.TranscellError):
    code = 406


MIN = APIVersion.parse(MIN_VERSION)
MAX = APIVersion.parse(MAX_VERSION)


def negotiate(headers) -> APIVersion:
    try:
        requested = microversion_parse.get_version(headers, service_type=SERVICE_TYPE,
                                                   legacy_headers=[LEGACY_HEADER])
    except (ValueError, TypeError):
        raise exception.Invalid("Invalid API version request: the OpenStack-API-Version "
                                "header is malformed.") from None
    if requested is None:
        return MIN
    if requested.strip().lower() == "latest":
        return MAX
    version = APIVersion.parse(requested)
    if not MIN <= version <= MAX:
        raise NotAcceptableVersion(f"Version {version} is not supported by the API. "
                                   f"Minimum is {MIN} and maximum is {MAX}.")
    return version
