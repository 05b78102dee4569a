"""The one way transcell services talk to Placement.

The same client drives the Placement mounted in-process (``DirectTransport``,
no sockets) and a real Placement reached by URL (``HTTPTransport``), so the
embedded cloud and a distributed deployment exercise identical requests.

Every write to a provider or a consumer is guarded by a generation. Where the
caller's intent is absolute ("these are the inventories", "move everything
this consumer holds") the client re-reads and retries on a generation
conflict; a conflict that outlives the retries is reported, never ignored.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import quote, urlencode

import requests
import webob

from transcell import exception, tally

LOG = logging.getLogger(__name__)

# 1.38 makes consumer_type part of every allocation write; 1.39 is the
# highest version openstack-placement 16 serves.
MICROVERSION = "1.39"
MAX_ATTEMPTS = 6

CONCURRENT_UPDATE = "placement.concurrent_update"

# What Placement fills in for inventory fields a request leaves out.
INVENTORY_DEFAULTS = {"reserved": 0, "min_unit": 1, "max_unit": 2147483647, "step_size": 1,
                      "allocation_ratio": 1.0}

# Passed as a consumer generation: read the current one before writing.
READ_CURRENT: Any = object()


@dataclass
class Reply:
    status: int
    body: Any

    @property
    def error_code(self) -> str | None:
        errors = self.body.get("errors") if isinstance(self.body, dict) else None
        return errors[0].get("code") if errors else None

    @property
    def detail(self) -> str:
        if isinstance(self.body, dict) and self.body.get("errors"):
            err = self.body["errors"][0]
            return str(err.get("detail") or err.get("title") or "").strip()
        return "" if self.body is None else str(self.body)[:500]


class Transport(Protocol):
    def request(self, method: str, path: str, body: Any = None,
                headers: Mapping[str, str] | None = None) -> Reply: ...


def _decode(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", "replace")


class DirectTransport:
    """Call the Placement WSGI app in the same process, as a trusted service."""

    TOKEN = "transcell:service"
    ROLES = "admin,service"

    def __init__(self, app: Callable[..., Iterable[bytes]]):
        self.app = app

    def request(self, method: str, path: str, body: Any = None,
                headers: Mapping[str, str] | None = None) -> Reply:
        all_headers = {"X-Auth-Token": self.TOKEN, "X-Roles": self.ROLES,
                       "Accept": "application/json", **(headers or {})}
        kwargs: dict[str, Any] = {}
        if body is not None:
            all_headers["Content-Type"] = "application/json"
            kwargs["body"] = json.dumps(body).encode()
        req = webob.Request.blank(path, method=method, headers=all_headers, **kwargs)
        resp = req.get_response(self.app)
        return Reply(resp.status_int, _decode(resp.body))


class HTTPTransport:
    """Talk to a Placement service over HTTP (noauth2 ``user:project`` or a Keystone token)."""

    def __init__(self, url: str, token: str, timeout: float = 30.0):
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self._local = threading.local()

    def _session(self) -> requests.Session:
        # requests.Session is not documented thread-safe: one per thread.
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        return session

    def request(self, method: str, path: str, body: Any = None,
                headers: Mapping[str, str] | None = None) -> Reply:
        all_headers = {"X-Auth-Token": self.token, "Accept": "application/json",
                       **(headers or {})}
        data = None
        if body is not None:
            all_headers["Content-Type"] = "application/json"
            data = json.dumps(body)
        try:
            resp = self._session().request(method, self.url + path, data=data,
                                           headers=all_headers, timeout=self.timeout)
        except requests.RequestException as exc:
            raise exception.PlacementError(
                reason=f"{method} {self.url}{path} failed: {exc}") from exc
        return Reply(resp.status_code, _decode(resp.content))


class SessionTransport:
    """Talk to a Placement service over HTTP with a keystoneauth session.

    The session's auth plugin puts the service user's Keystone token on every
    request and fetches a new one when it nears expiry, so no token is configured.
    """

    def __init__(self, session: Any, url: str, timeout: float = 30.0):
        self.session = session
        self.url = url.rstrip("/")
        self.timeout = timeout

    def request(self, method: str, path: str, body: Any = None,
                headers: Mapping[str, str] | None = None) -> Reply:
        from keystoneauth1 import exceptions as ks_exc

        kwargs: dict[str, Any] = {"headers": {"Accept": "application/json", **(headers or {})},
                                  "raise_exc": False, "timeout": self.timeout}
        if body is not None:
            kwargs["json"] = body
        try:
            resp = self.session.request(self.url + path, method, **kwargs)
        except ks_exc.ClientException as exc:
            raise exception.PlacementError(
                reason=f"{method} {self.url}{path} failed: {exc}") from exc
        return Reply(resp.status_code, _decode(resp.content))


def _only_resources(allocations: Mapping[str, Mapping[str, Any]]) -> dict[str, dict]:
    """Allocations in request form, dropping provider generations and empty entries."""
    out = {}
    for rp, alloc in allocations.items():
        resources = {rc: int(n) for rc, n in alloc["resources"].items() if int(n) > 0}
        if resources:
            out[rp] = {"resources": resources}
    return out


def _backoff(attempt: int) -> None:
    time.sleep(random.uniform(0, 0.005 * (attempt + 1)))


class PlacementClient:
    """Placement operations in transcell's terms; safe to share between threads."""

    def __init__(self, transport: Transport):
        self.transport = transport
        self._known_traits: set[str] = set()
        self._traits_lock = threading.Lock()

    # -- plumbing ---------------------------------------------------------

    def _call(self, method: str, path: str, body: Any = None) -> Reply:
        headers = {"OpenStack-API-Version": f"placement {MICROVERSION}"}
        if tally.ENABLED:
            tally.request("placement", method, path)
        return self.transport.request(method, path, body=body, headers=headers)

    @staticmethod
    def _fail(method: str, path: str, reply: Reply) -> exception.PlacementError:
        return exception.PlacementError(
            reason=f"{method} {path} returned {reply.status}: {reply.detail}")

    def _expect(self, method: str, path: str, body: Any = None,
                ok: tuple[int, ...] = (200,), rp: str | None = None) -> Reply:
        reply = self._call(method, path, body)
        if reply.status in ok:
            return reply
        if reply.status == 404 and rp is not None:
            raise exception.ResourceProviderNotFound(uuid=rp)
        raise self._fail(method, path, reply)

    def _generation_guarded(self, rp: str, read_path: str,
                            write: Callable[[dict], tuple[str, dict] | None]) -> None:
        """Read a provider sub-resource, write it back with its generation, retry conflicts.

        ``write`` gets the current document and returns ``(path, body)`` to PUT,
        or None when nothing needs changing.
        """
        for attempt in range(MAX_ATTEMPTS):
            current = self._expect("GET", read_path, rp=rp).body
            request = write(current)
            if request is None:
                return
            path, body = request
            body["resource_provider_generation"] = current["resource_provider_generation"]
            reply = self._call("PUT", path, body)
            if reply.status == 200:
                return
            if reply.status == 404:
                raise exception.ResourceProviderNotFound(uuid=rp)
            if reply.status == 409 and reply.error_code == CONCURRENT_UPDATE:
                LOG.debug("Generation conflict on %s (attempt %d); retrying", path, attempt + 1)
                _backoff(attempt)
                continue
            raise self._fail("PUT", path, reply)
        raise exception.PlacementError(
            reason=f"resource provider {rp} kept changing; gave up after "
                   f"{MAX_ATTEMPTS} attempts at {read_path}")

    # -- resource providers -----------------------------------------------

    def get_provider(self, uuid: str) -> dict | None:
        path = f"/resource_providers/{uuid}"
        reply = self._call("GET", path)
        if reply.status == 404:
            return None
        if reply.status != 200:
            raise self._fail("GET", path, reply)
        return reply.body

    def ensure_resource_provider(self, uuid: str, name: str, parent: str | None = None) -> dict:
        """The provider ``uuid`` named ``name``, created if missing (and renamed if needed)."""
        provider = self.get_provider(uuid)
        if provider is None:
            body = {"uuid": uuid, "name": name}
            if parent:
                body["parent_provider_uuid"] = parent
            reply = self._call("POST", "/resource_providers", body)
            if reply.status == 200:
                return reply.body
            # A concurrent creator may have won the race; that is success.
            provider = self.get_provider(uuid)
            if provider is None:
                raise self._fail("POST", "/resource_providers", reply)
        if provider["name"] != name:
            path = f"/resource_providers/{uuid}"
            body = {"name": name, "parent_provider_uuid": provider.get("parent_provider_uuid")}
            provider = self._expect("PUT", path, body, rp=uuid).body
        return provider

    def list_providers(self, member_of: Iterable[str] | None = None) -> list[dict]:
        """All providers, or those in any of the aggregates ``member_of``."""
        path = "/resource_providers"
        aggregates = list(member_of or ())
        if aggregates:
            path += "?" + urlencode({"member_of": "in:" + ",".join(aggregates)}, safe=":,")
        return self._expect("GET", path).body["resource_providers"]

    def delete_provider(self, uuid: str) -> None:
        """Delete a provider; an absent one is already deleted."""
        self._expect("DELETE", f"/resource_providers/{uuid}", ok=(204, 404))

    # -- inventories ------------------------------------------------------

    def get_inventories(self, uuid: str) -> dict[str, dict]:
        path = f"/resource_providers/{uuid}/inventories"
        return self._expect("GET", path, rp=uuid).body["inventories"]

    def set_inventory(self, uuid: str, inventories: Mapping[str, Mapping[str, Any]]) -> None:
        """Make the provider's inventories exactly ``inventories`` (fields not given default)."""
        path = f"/resource_providers/{uuid}/inventories"
        wanted = {rc: dict(inv) for rc, inv in inventories.items()}
        complete = {rc: {**INVENTORY_DEFAULTS, **inv} for rc, inv in wanted.items()}

        def write(current: dict) -> tuple[str, dict] | None:
            have = current["inventories"]
            same = set(have) == set(complete) and all(
                have[rc].get(field) == value
                for rc, inv in complete.items() for field, value in inv.items())
            return None if same else (path, {"inventories": wanted})

        self._generation_guarded(uuid, path, write)

    # -- traits -----------------------------------------------------------

    def ensure_traits(self, names: Iterable[str]) -> None:
        """Create the custom traits among ``names``; standard ones always exist."""
        with self._traits_lock:
            missing = {n for n in names if n.startswith("CUSTOM_")} - self._known_traits
        for name in sorted(missing):
            self._expect("PUT", f"/traits/{quote(name)}", ok=(201, 204))
            with self._traits_lock:
                self._known_traits.add(name)

    def get_traits(self, uuid: str) -> list[str]:
        return sorted(self._expect("GET", f"/resource_providers/{uuid}/traits",
                                   rp=uuid).body["traits"])

    def set_traits(self, uuid: str, traits: Iterable[str]) -> None:
        """Make the provider's traits exactly ``traits``."""
        wanted = sorted(set(traits))
        self.ensure_traits(wanted)
        path = f"/resource_providers/{uuid}/traits"

        def write(current: dict) -> tuple[str, dict] | None:
            return None if sorted(current["traits"]) == wanted else (path, {"traits": wanted})

        self._generation_guarded(uuid, path, write)

    # -- aggregates -------------------------------------------------------

    def get_aggregates(self, uuid: str) -> list[str]:
        return sorted(self._expect("GET", f"/resource_providers/{uuid}/aggregates",
                                   rp=uuid).body["aggregates"])

    def set_aggregates(self, uuid: str, aggregate_uuids: Iterable[str]) -> None:
        """Make the provider's aggregates exactly ``aggregate_uuids``."""
        wanted = sorted(set(aggregate_uuids))
        path = f"/resource_providers/{uuid}/aggregates"

        def write(current: dict) -> tuple[str, dict] | None:
            same = sorted(current["aggregates"]) == wanted
            return None if same else (path, {"aggregates": wanted})

        self._generation_guarded(uuid, path, write)

    # -- allocation candidates --------------------------------------------

    def get_allocation_candidates(
            self, resources: Mapping[str, int], required_traits: Iterable[str] = (),
            forbidden_traits: Iterable[str] = (), member_of: Iterable[Iterable[str]] = (),
            in_tree: str | None = None, limit: int | None = None,
    ) -> tuple[list[dict], dict[str, dict]]:
        """Where ``resources`` fit: (allocation_requests, provider_summaries).

        Each inner list of ``member_of`` is one any-of constraint; all of them
        must hold. Unknown custom traits are created first, so asking for a
        trait no provider has yet finds nothing instead of failing.
        """
        required = sorted(set(required_traits))
        forbidden = sorted(set(forbidden_traits))
        self.ensure_traits(required + forbidden)
        query: list[tuple[str, str]] = [
            ("resources", ",".join(f"{rc}:{int(n)}" for rc, n in sorted(resources.items())
                                   if int(n) > 0))]
        if required or forbidden:
            query.append(("required", ",".join(required + ["!" + t for t in forbidden])))
        for group in member_of:
            aggregates = sorted(set(group))
            if aggregates:
                query.append(("member_of", "in:" + ",".join(aggregates)))
        if in_tree:
            query.append(("in_tree", in_tree))
        if limit is not None:
            query.append(("limit", str(int(limit))))
        path = "/allocation_candidates?" + urlencode(query, safe=":,!")
        body = self._expect("GET", path).body
        return body["allocation_requests"], body["provider_summaries"]

    # -- allocations ------------------------------------------------------

    def get_allocations(self, consumer: str) -> dict:
        """The consumer's allocations; ``consumer_generation`` is None for an unknown consumer."""
        body = self._expect("GET", f"/allocations/{consumer}").body
        body.setdefault("consumer_generation", None)
        return body

    def _put_allocations(self, consumer: str, allocations: Mapping[str, Mapping[str, Any]],
                         project_id: str, user_id: str, consumer_type: str,
                         generation: int | None) -> bool:
        path = f"/allocations/{consumer}"
        wanted = _only_resources(allocations)
        fixed_generation = generation is not READ_CURRENT
        for attempt in range(MAX_ATTEMPTS):
            if fixed_generation:
                current_generation = generation
            else:
                current = self.get_allocations(consumer)
                if (current["consumer_generation"] is not None
                        and _only_resources(current["allocations"]) == wanted
                        and current.get("consumer_type") == consumer_type
                        and current.get("project_id") == project_id
                        and current.get("user_id") == user_id):
                    return True
                current_generation = current["consumer_generation"]
            body = {"allocations": wanted, "project_id": project_id, "user_id": user_id,
                    "consumer_generation": current_generation, "consumer_type": consumer_type}
            reply = self._call("PUT", path, body)
            if reply.status == 204:
                return True
            if reply.status != 409:
                raise self._fail("PUT", path, reply)
            if reply.error_code != CONCURRENT_UPDATE:
                LOG.info("Placement refused allocations for %s: %s", consumer, reply.detail)
                return False
            if fixed_generation:
                raise exception.AllocationConflict(consumer=consumer, reason=reply.detail)
            _backoff(attempt)
        raise exception.AllocationConflict(
            consumer=consumer, reason=f"gave up after {MAX_ATTEMPTS} attempts")

    def claim(self, consumer_uuid: str, allocations: Mapping[str, Mapping[str, Any]],
              project_id: str, user_id: str, consumer_type: str = "INSTANCE") -> bool:
        """Give the consumer exactly ``allocations``; False when the resources are not there.

        Claiming what the consumer already holds succeeds without a write, so a
        retried step is harmless. Raises AllocationConflict if the consumer's
        generation keeps changing underneath.
        """
        return self._put_allocations(consumer_uuid, allocations, project_id, user_id,
                                     consumer_type, READ_CURRENT)

    def replace_allocations(self, consumer: str, allocations: Mapping[str, Mapping[str, Any]],
                            project_id: str, user_id: str, consumer_type: str,
                            consumer_generation: int | None = READ_CURRENT) -> bool:
        """Overwrite the consumer's allocations, checked against its generation.

        By default the current generation is read (and re-read on a race); pass
        ``consumer_generation`` (an int, or None for "must not exist yet") to
        write only if the consumer is still as the caller last saw it, which
        raises AllocationConflict otherwise. Empty ``allocations`` removes them.
        Returns False when the resources are not there.
        """
        return self._put_allocations(consumer, allocations, project_id, user_id,
                                     consumer_type, consumer_generation)

    def delete_allocations(self, consumer: str) -> None:
        """Drop everything the consumer holds; an unknown consumer holds nothing."""
        self._expect("DELETE", f"/allocations/{consumer}", ok=(204, 404))

    def move_allocations(self, source_consumer: str, target_consumer: str,
                         consumer_type: str = "MIGRATION") -> bool:
        """Atomically hand everything ``source_consumer`` holds to ``target_consumer``.

        The target's own allocations are replaced in the same transaction (this
        is how a revert drops the target-side claim). The target takes the
        source's project and user. Returns False if the source holds nothing.
        """
        if source_consumer == target_consumer:
            raise exception.Invalid(reason="cannot move allocations onto the same consumer")
        for attempt in range(MAX_ATTEMPTS):
            source = self.get_allocations(source_consumer)
            moving = _only_resources(source["allocations"])
            if not moving:
                return False
            target = self.get_allocations(target_consumer)
            project_id, user_id = source["project_id"], source["user_id"]
            body = {
                source_consumer: {
                    "allocations": {}, "project_id": project_id, "user_id": user_id,
                    "consumer_generation": source["consumer_generation"],
                    "consumer_type": source.get("consumer_type") or "INSTANCE"},
                target_consumer: {
                    "allocations": moving, "project_id": project_id, "user_id": user_id,
                    "consumer_generation": target["consumer_generation"],
                    "consumer_type": consumer_type},
            }
            reply = self._call("POST", "/allocations", body)
            if reply.status == 204:
                return True
            if reply.status == 409 and reply.error_code == CONCURRENT_UPDATE:
                LOG.debug("Consumer changed while moving %s -> %s (attempt %d); retrying",
                          source_consumer, target_consumer, attempt + 1)
                _backoff(attempt)
                continue
            raise self._fail("POST", "/allocations", reply)
        raise exception.AllocationConflict(
            consumer=source_consumer,
            reason=f"moving to {target_consumer} gave up after {MAX_ATTEMPTS} attempts")

    def claim_moving(self, consumer: str, allocations: Mapping[str, Mapping[str, Any]],
                     project_id: str, user_id: str, migration: str) -> bool:
        """Claim ``allocations`` for a moving server and hand what it held to ``migration``.

        One write for what a move's start needs in two (``move_allocations``,
        then ``claim``): the server's source allocation goes to the migration
        consumer and the server's own consumer takes the target's, in one
        transaction, so no instant exists in which either is held twice or not
        at all. False when the target's resources are not there (nothing
        changed). Once ``migration`` holds something (an earlier attempt moved
        it), this is ``claim`` alone, so a retried step is harmless.
        """
        if consumer == migration:
            raise exception.Invalid(reason="cannot move allocations onto the same consumer")
        wanted = _only_resources(allocations)
        # a move's migration consumer is new: the first write says so (generation None)
        # instead of reading it first; if it exists after all, Placement answers a
        # generation conflict and the next attempt reads it
        held: dict[str, Any] = {"allocations": {}, "consumer_generation": None}
        for attempt in range(MAX_ATTEMPTS):
            if attempt:
                held = self.get_allocations(migration)
            if _only_resources(held["allocations"]):
                return self.claim(consumer, allocations, project_id, user_id)
            current = self.get_allocations(consumer)
            moving = _only_resources(current["allocations"])
            if not moving:
                return self.claim(consumer, allocations, project_id, user_id)
            body = {
                migration: {
                    "allocations": moving, "project_id": current["project_id"],
                    "user_id": current["user_id"],
                    "consumer_generation": held["consumer_generation"],
                    "consumer_type": "MIGRATION"},
                consumer: {
                    "allocations": wanted, "project_id": project_id, "user_id": user_id,
                    "consumer_generation": current["consumer_generation"],
                    "consumer_type": current.get("consumer_type") or "INSTANCE"},
            }
            reply = self._call("POST", "/allocations", body)
            if reply.status == 204:
                return True
            if reply.status != 409:
                raise self._fail("POST", "/allocations", reply)
            if reply.error_code != CONCURRENT_UPDATE:
                LOG.info("Placement refused allocations for %s: %s", consumer, reply.detail)
                return False
            LOG.debug("Consumer changed while claiming %s moving to %s (attempt %d); "
                      "retrying", consumer, migration, attempt + 1)
            if attempt:
                _backoff(attempt)
        raise exception.AllocationConflict(
            consumer=consumer, reason=f"claiming while moving to {migration} gave up after "
                                      f"{MAX_ATTEMPTS} attempts")

    # -- usage and audit --------------------------------------------------

    def get_provider_allocations(self, uuid: str) -> dict[str, dict[str, int]]:
        """consumer -> resources held on this provider."""
        body = self._expect("GET", f"/resource_providers/{uuid}/allocations", rp=uuid).body
        return {consumer: alloc["resources"] for consumer, alloc in body["allocations"].items()}

    def get_usages(self, uuid: str) -> dict[str, int]:
        return self._expect("GET", f"/resource_providers/{uuid}/usages", rp=uuid).body["usages"]

    def list_all_allocations_by_consumer(self) -> dict[str, dict[str, dict[str, int]]]:
        """consumer -> provider -> resources, across every provider (for consistency audits)."""
        result: dict[str, dict[str, dict[str, int]]] = {}
        for provider in self.list_providers():
            try:
                held = self.get_provider_allocations(provider["uuid"])
            except exception.ResourceProviderNotFound:
                continue
            for consumer, resources in held.items():
                result.setdefault(consumer, {})[provider["uuid"]] = resources
        return result


def from_config() -> PlacementClient:
    """The client for this deployment: Placement at ``[placement] url``, else in-process.

    A remote Placement is reached with the service user's Keystone token when
    ``[service_auth]`` is configured, else with the noauth2 ``[placement] auth_token``.
    """
    from transcell import conf, service_auth

    if conf.CONF.placement.url:
        if service_auth.configured():
            return PlacementClient(SessionTransport(service_auth.session(),
                                                    conf.CONF.placement.url))
        return PlacementClient(HTTPTransport(conf.CONF.placement.url,
                                             conf.CONF.placement.auth_token))
    from transcell.placement import embedded

    return PlacementClient(DirectTransport(embedded.load_app(embedded.database_url())))
