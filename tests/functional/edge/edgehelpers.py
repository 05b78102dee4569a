"""Helpers of the edge tests: raw requests, leak checks, state digests."""

from __future__ import annotations

import hashlib
import json

import requests
from cloudclients import CloudProcess

#: Words that mean an internal error leaked into a response body.
LEAKS = ("Traceback", "Remote error", "UnicodeEncodeError", "UnicodeDecodeError",
         "RecursionError", "KeyError", "TypeError", "AttributeError", "ValueError",
         "IntegrityError", "OperationalError", "sqlalchemy", 'File "/')

#: Lists whose digest must not move when a request is refused (read as admin).
STATE_LISTS = ("/compute/v2.1/servers/detail?all_tenants=1", "/compute/v2.1/flavors/detail",
               "/compute/v2.1/os-keypairs", "/compute/v2.1/os-aggregates",
               "/image/v2/images?limit=1000", "/network/v2.0/networks", "/network/v2.0/ports",
               "/network/v2.0/subnets", "/image/v2/metadefs/namespaces?limit=1000")


def raw(cloud: CloudProcess, method: str, path: str, cloud_name: str | None = "transcell-admin",
        data: bytes | None = None, headers: dict[str, str] | None = None
        ) -> requests.Response:
    """A request with the path and body sent byte for byte as given."""
    sent = dict(headers or {})
    if cloud_name is not None:
        sent["X-Auth-Token"] = cloud.token(cloud_name)
    if data is not None:
        sent.setdefault("Content-Type", "application/json")
    session = requests.Session()
    prepared = requests.Request(method, cloud.base_url + "/", headers=sent,
                                data=data).prepare()
    prepared.url = cloud.base_url + path  # no re-quoting: %ff stays %ff
    return session.send(prepared, timeout=60)


def assert_clean(resp: requests.Response) -> None:
    """No 5xx, and nothing internal in the body."""
    assert resp.status_code < 500, (resp.status_code, resp.text[:500])
    for word in LEAKS:
        assert word not in resp.text, (word, resp.status_code, resp.text[:500])


#: Fields a running cloud changes by itself (heartbeats, power-state sync).
VOLATILE = frozenset({"updated", "updated_at", "progress", "OS-EXT-STS:power_state"})


def _stable(value):
    if isinstance(value, dict):
        return {k: _stable(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [_stable(v) for v in value]
    return value


def state_snapshot(cloud: CloudProcess) -> dict[str, object]:
    """What the cloud holds, as admin sees it, list by list."""
    snapshot = {}
    for path in STATE_LISTS:
        resp = cloud.request("GET", path)
        assert resp.status_code == 200, (path, resp.status_code, resp.text[:300])
        snapshot[path] = _stable(resp.json())
    return snapshot


def state_digest(cloud: CloudProcess) -> str:
    """The snapshot in one hash, cheap to compare after every refused request."""
    text = json.dumps(state_snapshot(cloud), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()
