"""Cinder's microversions: ``OpenStack-API-Version: volume 3.x``.

No header means 3.0, ``latest`` the maximum, a version outside the range is a
406 and a malformed one a 400. What each version served here changed:

- 3.0: volumes, volume actions, types, limits (v2's API under /v3)
- 3.12: GET /volumes/summary
- 3.27: the attachments API (create, update with a connector, delete, list, show)
- 3.31: unknown list filters are refused (400) instead of ignored
- 3.42: os-extend grows an attached (in-use) volume too
- 3.44: POST /attachments/{id}/action {"os-complete": null}
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import microversion_parse
import webob

from transcell import exception

SERVICE_TYPE = "volume"
MIN_VERSION = "3.0"
MAX_VERSION = "3.44"

SUMMARY = "3.12"
ATTACHMENTS = "3.27"
FILTER_CHECK = "3.31"
SNAPSHOT_USER_ID = "3.41"
EXTEND_IN_USE = "3.42"
ATTACHMENT_COMPLETE = "3.44"

_FORMAT = re.compile(r"^([1-9]\d{0,8})\.(0|[1-9]\d{0,8})$")


@dataclass(frozen=True, order=True)
class APIVersion:
    major: int
    minor: int

    @classmethod
    def parse(cls, text: str) -> APIVersion:
        found = _FORMAT.match(text.strip())
        if not found:
            raise exception.Invalid(f"API Version String {text[:32]} is of invalid format. "
                                    "Must be of format MajorNum.MinorNum.")
        return cls(int(found.group(1)), int(found.group(2)))

    def at_least(self, version: str) -> bool:
        return self >= APIVersion.parse(version)

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}"


class NotAcceptableVersion(exception.TranscellError):
    code = 406


class VersionNotFoundForAPIMethod(exception.NotFound):
    msg_fmt = "API version %(version)s is not supported on this method."


MIN = APIVersion.parse(MIN_VERSION)
MAX = APIVersion.parse(MAX_VERSION)
ENVIRON_KEY = "transcell.volume_api_version"


def negotiate(headers) -> APIVersion:
    try:
        requested = microversion_parse.get_version(headers, service_type=SERVICE_TYPE)
    except (ValueError, TypeError):
        raise exception.Invalid("Invalid API version request: the OpenStack-API-Version "
                                "header is malformed.") from None
    if requested is None:
        return MIN
    if requested.strip().lower() == "latest":
        return MAX
    version = APIVersion.parse(requested)
    if version.major != 3 or not MIN <= version <= MAX:
        raise NotAcceptableVersion(f"Version {version} is not supported by the API. "
                                   f"Minimum is {MIN} and maximum is {MAX}.")
    return version


def of(req: webob.Request) -> APIVersion:
    return req.environ.get(ENVIRON_KEY, MIN)


def require(req: webob.Request, version: str) -> None:
    """A route that appears at ``version``: below it, Cinder's 404."""
    if not of(req).at_least(version):
        raise VersionNotFoundForAPIMethod(version=str(of(req)))
