"""Host aggregates: named sets of compute hosts carrying key/value metadata.

They live in the API database, because a host's aggregates matter to the
scheduler whichever cell the host is in. Operators use them as in Nova (to
tag hosts, and to override weigher multipliers per group of hosts through
metadata such as ``cross_cell_move_weight_multiplier``).

One thing differs on purpose: the availability zone. In transcell a host's
zone *is* its cell (the scheduler confines a zone to its cell's Placement
aggregate, ``os-availability-zone`` lists cells, services report the cell
name). Nova lets an aggregate's ``availability_zone`` metadata move its
hosts into any zone; here that would make the API promise zones the
scheduler cannot honour, and split a cell across zones or a zone across
cells. So the only ``availability_zone`` an aggregate may carry is the name
of the cell all of its hosts are in; anything else is refused, before any
row is written. Clients that set the true zone keep working.

Every function validates first and writes after, in one transaction, so a
refused request changes nothing.

From 2.81 an aggregate also names where to pre-fetch images: ``cache_images``
asks each of its compute hosts to fetch them into the host's image cache.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import uuid as uuidlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from transcell import cell as cells
from transcell import exception
from transcell.compute import service_state
from transcell.compute.rpcapi import ComputeAPI
from transcell.context import RequestContext
from transcell.db import api_models as am
from transcell.db.session import api_session
from transcell.db.types import utcnow
from transcell.registry import services

LOG = logging.getLogger(__name__)

AZ_KEY = "availability_zone"
#: Metadata keys whose value the scheduler reads as a number.
NUMERIC_KEYS = frozenset({"cross_cell_move_weight_multiplier"})


class AggregateNotFound(exception.NotFound):
    msg_fmt = "Aggregate %(aggregate_id)s could not be found."


class AggregateNameExists(exception.Conflict):
    msg_fmt = "Aggregate %(aggregate_name)s already exists."


class AggregateHostExists(exception.Conflict):
    msg_fmt = "Aggregate %(aggregate_id)s already has host %(host)s."


class AggregateHostNotFound(exception.NotFound):
    """Nova words a failed removal the same whatever the cause; so do we."""

    msg_fmt = "Cannot remove host %(host)s in aggregate %(aggregate_id)s"


class InvalidAggregateAction(exception.Invalid):
    msg_fmt = "Cannot %(action)s aggregate %(aggregate_id)s. Reason: %(reason)s."


class ZoneMismatch(exception.Conflict):
    """Adding a host whose cell is not the aggregate's zone: a conflict with existing
    state (the aggregate's zone), as Nova reports it for ``add_host``."""

    msg_fmt = "Cannot add host to aggregate %(aggregate_id)s. Reason: %(reason)s."


@dataclass(frozen=True)
class Aggregate:
    """A detached aggregate, safe to use after its session closed."""

    id: int
    uuid: str
    name: str
    created_at: dt.datetime
    updated_at: dt.datetime | None
    hosts: list[str] = field(default_factory=list)
    metadata: dict[str, str] = field(default_factory=dict)

    @property
    def availability_zone(self) -> str | None:
        return self.metadata.get(AZ_KEY)

    @classmethod
    def of(cls, row: am.Aggregate) -> Aggregate:
        return cls(row.id, row.uuid, row.name, row.created_at, row.updated_at,
                   [h.host for h in row.hosts],
                   {m.key: m.value for m in row.metadata_items})


# -- reading -------------------------------------------------------------------

def list_all() -> list[Aggregate]:
    with api_session() as s:
        return [Aggregate.of(r) for r in s.scalars(select(am.Aggregate)
                                                   .order_by(am.Aggregate.id))]


def _row(s: Session, aggregate_id: int) -> am.Aggregate:
    row = s.get(am.Aggregate, aggregate_id)
    if row is None:
        raise AggregateNotFound(aggregate_id=aggregate_id)
    return row


def get(aggregate_id: int) -> Aggregate:
    with api_session() as s:
        return Aggregate.of(_row(s, aggregate_id))


def metadata_by_host(hosts: Iterable[str] | None = None) -> dict[str, list[dict[str, str]]]:
    """For each host, the metadata of every aggregate it is in (one dict per aggregate).

    The scheduler's per-aggregate overrides read this once per request.
    """
    wanted = None if hosts is None else set(hosts)
    result: dict[str, list[dict[str, str]]] = {}
    with api_session() as s:
        for row in s.scalars(select(am.Aggregate).order_by(am.Aggregate.id)):
            metadata = {m.key: m.value for m in row.metadata_items}
            for member in row.hosts:
                if wanted is None or member.host in wanted:
                    result.setdefault(member.host, []).append(metadata)
    return result


# -- checks shared by the writers ----------------------------------------------

def _cells_of(s: Session, hosts: Iterable[str]) -> dict[str, str]:
    """Host name -> the name of its cell, from the host mappings."""
    names = list(hosts)
    if not names:
        return {}
    rows = s.scalars(select(am.HostMapping).where(am.HostMapping.host.in_(names)))
    return {r.host: r.cell.name for r in rows}


def _check_zone(s: Session, zone: str | None, hosts: list[str], aggregate_id: int | str,
                action: str) -> None:
    """Refuse an ``availability_zone`` that is not the cell of all ``hosts``.

    With no hosts yet, the zone must at least name a cell, or no host could
    ever join the aggregate.
    """
    if not zone:
        raise InvalidAggregateAction(action=action, aggregate_id=aggregate_id,
                                     reason="an aggregate cannot have an empty availability "
                                            "zone")
    host_cells = _cells_of(s, hosts)
    found = sorted(set(host_cells.values()))
    if hosts and found != [zone]:
        where = ", ".join(f"{h} in {host_cells.get(h, 'no cell')}" for h in sorted(hosts))
        raise InvalidAggregateAction(
            action=action, aggregate_id=aggregate_id,
            reason=f"availability zone '{zone}' is not the cell of the aggregate's hosts "
                   f"({where}); in this cloud a host's availability zone is its cell, so an "
                   "aggregate's availability_zone may only name that cell")
    if not hosts:
        names = [c.name for c in cells.list_cells(include_cell0=False)]
        if zone not in names:
            raise InvalidAggregateAction(
                action=action, aggregate_id=aggregate_id,
                reason=f"availability zone '{zone}' is not a cell; in this cloud the "
                       f"availability zones are the cells ({', '.join(names)}), so an "
                       "aggregate's availability_zone may only name its hosts' cell")


def check_numeric(metadata: Mapping[str, str | None], aggregate_id: int | str,
                  action: str) -> None:
    """Values the scheduler reads as numbers must be finite numbers (or null to remove)."""
    for key in sorted(NUMERIC_KEYS & set(metadata)):
        value = metadata[key]
        if value is None:
            continue
        try:
            number = float(value)
        except ValueError:
            number = math.nan
        if not math.isfinite(number):
            raise InvalidAggregateAction(action=action, aggregate_id=aggregate_id,
                                         reason=f"metadata {key} must be a finite number, "
                                                f"not '{value}'")


def _name_taken(s: Session, name: str, but: int | None = None) -> bool:
    query = select(am.Aggregate.id).where(am.Aggregate.name == name)
    if but is not None:
        query = query.where(am.Aggregate.id != but)
    return s.scalar(query) is not None


def _set_meta(row: am.Aggregate, key: str, value: str | None) -> None:
    current = {m.key: m for m in row.metadata_items}
    if value is None:
        if key in current:
            row.metadata_items.remove(current[key])
    elif key in current:
        current[key].value = value
    else:
        row.metadata_items.append(am.AggregateMetadata(key=key, value=value))


def _commit_unique(s: Session, name: str) -> None:
    """Flush, turning a lost race for the name into the same 409 as the pre-check."""
    try:
        s.flush()
    except IntegrityError:
        raise AggregateNameExists(aggregate_name=name) from None


# -- writing -------------------------------------------------------------------

def create(name: str, availability_zone: str | None = None) -> Aggregate:
    with api_session() as s:
        if _name_taken(s, name):
            raise AggregateNameExists(aggregate_name=name)
        if availability_zone:
            _check_zone(s, availability_zone, [], name, "create")
        row = am.Aggregate(uuid=str(uuidlib.uuid4()), name=name)
        if availability_zone:
            row.metadata_items = [am.AggregateMetadata(key=AZ_KEY, value=availability_zone)]
        s.add(row)
        _commit_unique(s, name)
        return Aggregate.of(row)


_ABSENT = object()


def update(aggregate_id: int, name: str | None = None,
           availability_zone: object = _ABSENT) -> Aggregate:
    """Rename and/or set the zone; ``availability_zone=None`` asks to clear it, which
    Nova refuses and so do we (a host is always in its cell's zone anyway)."""
    with api_session() as s:
        row = _row(s, aggregate_id)
        if name is not None and _name_taken(s, name, but=row.id):
            raise AggregateNameExists(aggregate_name=name)
        if availability_zone is not _ABSENT:
            zone = availability_zone if isinstance(availability_zone, str) else None
            _check_zone(s, zone, [h.host for h in row.hosts], aggregate_id, "update")
            _set_meta(row, AZ_KEY, zone)
        if name is not None:
            row.name = name
        row.updated_at = utcnow()
        _commit_unique(s, name or row.name)
        return Aggregate.of(row)


def set_metadata(aggregate_id: int, metadata: Mapping[str, str | None]) -> Aggregate:
    """Merge ``metadata`` in: a null value removes its key, others are set."""
    with api_session() as s:
        row = _row(s, aggregate_id)
        check_numeric(metadata, aggregate_id, "update metadata of")
        if AZ_KEY in metadata:
            _check_zone(s, metadata[AZ_KEY], [h.host for h in row.hosts], aggregate_id,
                        "update metadata of")
        for key, value in metadata.items():
            _set_meta(row, key, value)
        row.updated_at = utcnow()
        s.flush()
        return Aggregate.of(row)


def delete(aggregate_id: int) -> None:
    with api_session() as s:
        row = _row(s, aggregate_id)
        if row.hosts:
            raise InvalidAggregateAction(action="delete", aggregate_id=aggregate_id,
                                         reason="Host aggregate is not empty")
        s.delete(row)


def add_host(aggregate_id: int, host: str) -> Aggregate:
    with api_session() as s:
        host_cell = _cells_of(s, [host]).get(host)
        if host_cell is None:
            raise exception.ComputeHostNotFound(host=host)
        row = _row(s, aggregate_id)
        if host in (h.host for h in row.hosts):
            raise AggregateHostExists(aggregate_id=aggregate_id, host=host)
        zone = {m.key: m.value for m in row.metadata_items}.get(AZ_KEY)
        if zone and zone != host_cell:
            raise ZoneMismatch(aggregate_id=aggregate_id,
                               reason=f"host {host} is in availability zone {host_cell} (its "
                                      f"cell), not in the aggregate's zone {zone}")
        row.hosts.append(am.AggregateHost(host=host))
        try:
            s.flush()
        except IntegrityError:
            raise AggregateHostExists(aggregate_id=aggregate_id, host=host) from None
        return Aggregate.of(row)


def remove_host(aggregate_id: int, host: str) -> Aggregate:
    with api_session() as s:
        # A member whose host mapping is gone (its service was deleted) can still be
        # removed, or its aggregate could never be deleted.
        row = s.get(am.Aggregate, aggregate_id)
        member = None if row is None else next((h for h in row.hosts if h.host == host), None)
        if row is None or member is None:
            raise AggregateHostNotFound(aggregate_id=aggregate_id, host=host)
        row.hosts.remove(member)
        s.flush()
        return Aggregate.of(row)


# -- the image cache (2.81) -----------------------------------------------------

def cache_images(ctx: RequestContext, aggregate_id: int, image_ids: list[str]
                 ) -> dict[str, list[str]]:
    """Ask every compute host of the aggregate to fetch these images into its cache.

    Everything is checked before any host is asked (the aggregate exists,
    every image exists and is visible to the caller), so a refused request
    starts no fetch. A host whose compute service is down, gone, or in a cell
    that cannot be reached is skipped, as Nova skips it, rather than left
    with a request it would act on at some unknown later time. Returns the
    hosts asked and the hosts skipped.
    """
    aggregate = get(aggregate_id)
    for image_id in image_ids:
        try:
            services.image.get(ctx, image_id)
        except exception.ImageNotFound:
            raise exception.Invalid(f"Image {image_id} could not be found.") from None
    compute = ComputeAPI()
    result: dict[str, list[str]] = {"asked": [], "skipped": []}
    for host in aggregate.hosts:
        try:
            found = service_state.compute_service(host)
        except cells.UNREACHABLE as exc:
            LOG.warning("Not caching images on %s: its cell is not responding (%s)", host, exc)
            found = None
        if found is None or not service_state.is_up(found[1]):
            LOG.info("Not caching images on %s: its compute service is not up", host)
            result["skipped"].append(host)
            continue
        compute.cache_images(ctx, host, image_ids)
        result["asked"].append(host)
    LOG.info("Caching images %s on the hosts of aggregate %s: asked %s, skipped %s",
             ",".join(image_ids), aggregate_id, result["asked"], result["skipped"])
    return result
