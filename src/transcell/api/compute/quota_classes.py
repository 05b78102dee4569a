"""/os-quota-class-sets: named sets of default limits; class ``default`` is the
cloud's defaults, read by every project without limits of its own.

A change to ``default`` takes effect at the next check, with no restart:
``quota.limits`` reads the class before falling back to the ``[quota]``
options. The body's keys follow the microversion: server groups appear at
2.50, when the network resources go; file injection goes at 2.57.
"""

from __future__ import annotations

import webob

from transcell import exception, policy, quota
from transcell.api.compute import common
from transcell.api.compute.app import api_version
from transcell.api.compute.microversion import APIVersion
from transcell.api.compute.quota_sets import (
    FILES,
    NETWORK,
    check_key,
    parse_limits,
    update_schema,
)
from transcell.wsgi.app import context_of, json_response, read_json

SERVER_GROUPS = ("server_groups", "server_group_members")


def shown(version: APIVersion) -> list[str]:
    """What a class body shows at this microversion."""
    dropped: set[str] = set()
    if version.matches("2.50"):
        dropped.update(NETWORK)
    else:
        dropped.update(SERVER_GROUPS)
    if version.matches("2.57"):
        dropped.update(FILES)
    return [name for name in quota.RESOURCES if name not in dropped]


def settable(version: APIVersion) -> list[str]:
    """What an update may name: before 2.50 server groups may be set though not shown."""
    names = shown(version)
    if not version.matches("2.50"):
        names += list(SERVER_GROUPS)
    return names


def _check_name(class_name: str) -> None:
    if not 1 <= len(class_name) <= 255:
        raise exception.Invalid("id has a minimum character requirement of 1 and a "
                                "maximum of 255.")
    check_key("quota class", class_name)


def show(req: webob.Request, quota_class: str) -> webob.Response:
    policy.authorize(context_of(req), "os_compute_api:os-quota-class-sets:show",
                     {"quota_class": quota_class})
    values = quota.class_limits(quota_class)
    body = {"id": quota_class, **{name: values[name] for name in shown(api_version(req))}}
    return json_response({"quota_class_set": body})


def update(req: webob.Request, quota_class: str) -> webob.Response:
    version = api_version(req)
    body = read_json(req)
    common.validate(update_schema("quota_class_set", settable(version), with_force=False),
                    body)
    _check_name(quota_class)
    policy.authorize(context_of(req), "os_compute_api:os-quota-class-sets:update",
                     {"quota_class": quota_class})
    quota.set_class_limits(quota_class, parse_limits(body["quota_class_set"], settable(version)))
    values = quota.class_limits(quota_class)
    return json_response({"quota_class_set": {name: values[name]
                                              for name in shown(version)}})
