"""Listing servers across cells: each cell sorted and cut to a page, then one merge.

A list used to read every live row of every cell and sort them in Python,
which is fine for a demo and hopeless at 100,000 servers. Here every cell is
asked for at most ``limit`` rows, already in the requested order and already
past the marker, so no cell returns more than one page however large it is;
the pages are then merged with ``heapq.merge`` by the same order and cut to
``limit``. This is how Nova lists across cells (its multi-cell lister), and
the order is Nova's: the caller's keys, then ``created_at`` and ``id``, then
``uuid`` ascending, which makes the order total even across cells whose
integer ids overlap.

Two ways to read a cell, both returning rows in order:

- *keys only*, when every filter is a column test the database can apply: each
  cell returns the sort values and uuid of at most ``limit`` rows, and only
  the rows that win the merge are loaded, with just what a list's body shows,
  per cell in two queries (the row's columns joined to its flavor copy; tags,
  metadata, ``locked_reason``, interfaces, volumes and faults in one union),
  whatever the page's size;
- *checked*, when a filter is a regular expression or needs a server's joined
  data (name, flavor, tags, addresses, ...): the cell is read in sorted chunks
  loaded in full (every column, five queries: a filter may test any of them),
  and rows are tested in Python until ``limit`` pass or the cell is exhausted.

The marker is found through its instance mapping, in its own cell; its sort
values then stand for it in every cell ("after the marker" is a keyset
predicate in SQL), which is what Nova does with its local markers.

Cells are read in parallel or one after the other (``parallel_cells``),
each with the per-cell timeout of ``cell.gather``: a cell that is down or
slow is reported as down either way.
"""

from __future__ import annotations

import datetime as dt
import functools
import heapq
import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    Boolean,
    DateTime,
    Integer,
    Text,
    and_,
    case,
    cast,
    false,
    literal,
    null,
    or_,
    select,
    true,
    type_coerce,
    union_all,
)

from transcell import cell as cells
from transcell import exception
from transcell.db import cell_models as cm
from transcell.db.inlist import InList
from transcell.db.session import cell_session

#: Rows per ``IN (...)`` when loading a page in full: below every engine's limit on
#: bound parameters (SQLite's was 999 before 3.32).
IN_CHUNK = 500

#: Rows per sorted chunk a *checked* read tests before asking for the next.
CHECK_CHUNK = 200

Check = Callable[[dict], bool]

#: Nova's order when the caller names none: newest first, then the cell's id.
DEFAULT_SORT = (("created_at", True), ("id", True))


@dataclass
class ListQuery:
    """What a list asks of every cell; ``sort`` is (column, descending), uuid last."""

    filters: dict[str, Any]
    sort: list[tuple[str, bool]]
    limit: int
    checks: list[Check] = field(default_factory=list)
    marker: str | None = None
    #: sorted reads already built, by (after, limit) (``_sorted_query``)
    statements: dict[tuple, Any] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        if all(column != "uuid" for column, _ in self.sort):
            # Nova appends uuid ascending so pages are repeatable across cells
            self.sort = [*self.sort, ("uuid", False)]
        self.checks = [*_filter_checks(self.filters), *self.checks]


@dataclass
class Listed:
    """A page of servers in order, and the cells that did not answer."""

    servers: list[dict]
    down: list[cells.Cell]
    #: uuids every answering cell returned (for not listing a server twice)
    seen: set[str]


# --- order ---------------------------------------------------------------

def compare(sort: Sequence[tuple[str, bool]], a: Sequence, b: Sequence) -> int:
    """Nova's record comparison: key by key, an unset value before any set one,
    the whole comparison reversed for a descending key."""
    for (_, descending), x, y in zip(sort, a, b, strict=True):
        if x == y:
            continue
        if x is None:
            result = -1
        elif y is None:
            result = 1
        else:
            result = -1 if x < y else 1
        return -result if descending else result
    return 0


def merge(sort: Sequence[tuple[str, bool]], streams: Iterable[Iterable[tuple]],
          limit: int) -> list[tuple]:
    """The first ``limit`` rows of per-cell streams each sorted by ``sort``.

    A row is (sort values, uuid, anything); a uuid already merged (a server
    caught in two cells mid-move) is not listed twice.
    """
    fast = _tuple_key(sort)
    if fast is not None:
        def key(row: tuple) -> Any:
            return fast(row[0])
    else:
        slow = functools.cmp_to_key(lambda a, b: compare(sort, a, b))

        def key(row: tuple) -> Any:
            return slow(row[0])
    out: list[tuple] = []
    seen: set[str] = set()
    for row in heapq.merge(*streams, key=key):
        if row[1] in seen:
            continue
        seen.add(row[1])
        out.append(row)
        if len(out) >= limit:
            break
    return out


_EPOCH = dt.datetime(1970, 1, 1)


def _tuple_key(sort: Sequence[tuple[str, bool]]) -> Callable[[Sequence], tuple] | None:
    """``compare``'s order as a plain tuple key, which ``heapq`` compares in C rather
    than through a Python comparison per pair: an unset value becomes ``(0,)`` before
    ``(1, value)`` ascending, and descending keys are negated (numbers) or turned into
    the time before the epoch (timestamps). None when a descending key is text, which
    has no negation: the merge then uses ``compare`` itself."""
    steps = []
    for name, descending in sort:
        kind = cm.Instance.__table__.c[name].type.python_type
        if descending and kind not in (int, bool, float, dt.datetime):
            return None
        steps.append((descending, kind is dt.datetime))

    def key(values: Sequence) -> tuple:
        out = []
        for (descending, is_time), value in zip(steps, values, strict=True):
            if value is None:
                out.append((1,) if descending else (0,))
            elif not descending:
                out.append((1, value))
            else:
                out.append((0, _EPOCH - value if is_time else -value))
        return tuple(out)
    return key


def _column(name: str):
    return getattr(cm.Instance, name)


def _nullable(name: str) -> bool:
    return bool(cm.Instance.__table__.c[name].nullable)


def _order_by(sort: Sequence[tuple[str, bool]]) -> list:
    """ORDER BY in ``compare``'s order on every engine: NULL first ascending and
    last descending, spelled out for nullable columns since engines disagree."""
    clauses = []
    for name, descending in sort:
        column = _column(name)
        if _nullable(name):
            is_set = case((column.is_(None), 0), else_=1)
            clauses.append(is_set.desc() if descending else is_set.asc())
        clauses.append(column.desc() if descending else column.asc())
    return clauses


def _after(sort: Sequence[tuple[str, bool]], values: Sequence) -> Any:
    """Rows strictly after ``values`` in ``compare``'s order (a keyset predicate)."""
    alternatives = []
    equal: list = []
    for (name, descending), value in zip(sort, values, strict=True):
        column = _column(name)
        if value is None:
            beyond = false() if descending else column.is_not(None)
        elif descending:
            beyond = or_(column < value, column.is_(None)) if _nullable(name) else column < value
        else:
            beyond = column > value
        alternatives.append(and_(*equal, beyond) if equal else beyond)
        equal.append(column.is_(None) if value is None else column == value)
    return or_(*alternatives) if alternatives else true()


# --- reading one cell ------------------------------------------------------

def _filtered(query, filters: dict[str, Any]):
    """The filters the database applies (the rest are ``checks``)."""
    query = query.where(cm.Instance.hidden.is_(False), cm.Instance.deleted == 0)
    if filters.get("project_id"):
        query = query.where(cm.Instance.project_id == filters["project_id"])
    if filters.get("host"):
        query = query.where(cm.Instance.host == filters["host"])
    if filters.get("image"):
        query = query.where(cm.Instance.image_ref == filters["image"])
    if filters.get("vm_states"):
        query = query.where(cm.Instance.vm_state.in_(filters["vm_states"]))
    if filters.get("changes-since"):
        query = query.where(cm.Instance.updated_at >= filters["changes-since"])
    return query


def _filter_checks(filters: dict[str, Any]) -> list[Check]:
    """Filters tested in Python: a name's regular expression, the flavor copy, tags."""
    checks: list[Check] = []
    if filters.get("name"):
        try:
            pattern = re.compile(filters["name"])
        except re.error as exc:
            raise exception.Invalid(f"Invalid regular expression for name: {exc}") from exc
        checks.append(lambda s: bool(s["display_name"]) and
                      pattern.search(s["display_name"]) is not None)
    if filters.get("flavor"):
        flavor = filters["flavor"]
        checks.append(lambda s: (s["flavor"] or {}).get("flavorid") == flavor)
    for key, match_all, negate in (("tags", True, False), ("tags-any", False, False),
                                   ("not-tags", True, True), ("not-tags-any", False, True)):
        if filters.get(key):
            wanted = frozenset(filters[key])

            def tagged(s, w=wanted, a=match_all, n=negate) -> bool:
                hit = w <= set(s["tags"]) if a else bool(w & set(s["tags"]))
                return hit != n
            checks.append(tagged)
    return checks


def _sorted_query(query: ListQuery, after: Sequence | None, limit: int):
    """The sorted read of a cell; the same statement serves every cell asked with the
    same ``after`` and ``limit`` (a round of reads asks them all alike), built once."""
    key = (None if after is None else tuple(after), limit)
    stmt = query.statements.get(key)
    if stmt is None:
        columns = [_column(name) for name, _ in query.sort]
        stmt = _filtered(select(*columns), query.filters)
        if after is not None:
            stmt = stmt.where(_after(query.sort, after))
        stmt = query.statements[key] = stmt.order_by(*_order_by(query.sort)).limit(limit)
    return stmt


def _uuid_at(sort: Sequence[tuple[str, bool]]) -> int:
    return next(i for i, (name, _) in enumerate(sort) if name == "uuid")


def read_keys(cell: cells.Cell, query: ListQuery, after: Sequence | None,
              limit: int | None = None) -> list[tuple]:
    """At most ``limit`` (the page's, by default) rows of ``cell`` in order:
    (sort values, uuid, cell)."""
    at = _uuid_at(query.sort)
    with cell_session(cell) as s:
        # the session's connection: the ORM's execution steps cost more than the read
        rows = s.connection().execute(_sorted_query(query, after, limit or query.limit)).all()
    return [(tuple(r), r[at], cell) for r in rows]


def first_share(limit: int, n_cells: int) -> int:
    """Rows asked of each cell at first: twice its even share of the page, so that in
    a cloud whose servers are spread over its cells one round of reads decides."""
    return min(limit, max(50, -(-2 * limit // max(1, n_cells))))


def read_pages(cell_list: list[cells.Cell], query: ListQuery, after: Sequence | None,
               parallel: bool
               ) -> tuple[dict[cells.Cell, list[tuple]], list[cells.Cell], list[tuple]]:
    """Each answering cell's sorted rows, enough of them to decide the page, the cells
    that are down, and the page's rows merged (``merge``) from the cells' rows.

    Every cell is asked for its share first (``first_share``); a cell may hold
    more of the page only while every row it returned is among the merged
    winners and it returned all it was asked for, so only such cells are asked
    again, for the rest of a page after their last row (so at most two rounds).
    No cell is ever asked for more than ``limit`` rows in all, and a cell down on
    either round is down.
    """
    share = first_share(query.limit, len(cell_list))
    first = _gather(cell_list, lambda c: read_keys(c, query, after, share), parallel)
    pages = {c: first.results[c] for c in cell_list if c in first.results}
    asked = dict.fromkeys(pages, share)
    down = list(first.down)
    while True:
        winners = merge(query.sort, pages.values(), query.limit)
        won: dict[cells.Cell, int] = {}
        for _, _, cell in winners:
            won[cell] = won.get(cell, 0) + 1
        more = [c for c, rows in pages.items()
                if len(rows) == asked[c] < query.limit
                and (len(winners) < query.limit or won.get(c, 0) == len(rows))]
        if not more:
            return pages, down, winners
        # the rest of the page at once: a second round decides, never a third
        sizes = {c: query.limit - asked[c] for c in more}
        lasts = {c: pages[c][-1][0] for c in more}
        again = _gather(more, lambda c, lasts=lasts, sizes=sizes: read_keys(
            c, query, lasts[c], sizes[c]), parallel)
        for cell in more:
            if cell in again.results:
                pages[cell] = pages[cell] + again.results[cell]
                asked[cell] += sizes[cell]
            else:
                down.append(cell)
                del pages[cell]


def read_checked(cell: cells.Cell, query: ListQuery, after: Sequence | None) -> list[tuple]:
    """At most ``limit`` rows of ``cell`` that pass every check, in order, loaded in full:
    (sort values, uuid, server)."""
    at = _uuid_at(query.sort)
    found: list[tuple] = []
    chunk = max(CHECK_CHUNK, query.limit)
    with cell_session(cell) as s:
        while len(found) < query.limit:
            rows = s.execute(_sorted_query(query, after, chunk)).all()
            if not rows:
                break
            full = load(s, [r[at] for r in rows])
            for row in rows:
                server = full.get(row[at])
                if server is not None and all(check(server) for check in query.checks):
                    found.append((tuple(row), row[at], server))
                    if len(found) >= query.limit:
                        break
            if len(rows) < chunk:
                break
            after = tuple(rows[-1])
    return found


# --- loading a page in full -------------------------------------------------

def _chunks(items: list[str]) -> Iterable[list[str]]:
    for start in range(0, len(items), IN_CHUNK):
        yield items[start:start + IN_CHUNK]


def load(session, uuids: list[str], brief: bool = False) -> dict[str, dict]:
    """Live, visible servers by uuid, each as ``instance.to_dict`` shapes it, in five
    queries for the lot (tests hold the two to the same answer on every engine).

    ``brief``: only what a server's body in a list shows (``LIST_COLUMNS``, and the
    rest through ``_shown``), in two queries; that is all a page whose servers are
    already chosen needs, while ``checks`` may test any column, so the servers they
    are tested on are loaded whole.
    """
    shape = _BRIEF if brief else _FULL
    servers: dict[str, dict] = {}
    for part in _chunks(list(uuids)):
        servers.update(_load_part(session, part, shape))
    return servers


_INSTANCES = cm.Instance.__table__
_EXTRAS = cm.InstanceExtra.__table__

#: The instance columns a server's body in a list is built from (``views.servers``),
#: with ``deleted`` and ``hidden`` for telling live rows: a row of every column has a
#: third more values to step through and turn into Python values for nothing.
LIST_COLUMNS = (
    "id", "uuid", "hidden", "deleted", "display_name", "display_description", "hostname",
    "user_id", "project_id", "image_ref", "key_name", "availability_zone", "host", "node",
    "vm_state", "task_state", "power_state", "progress", "launched_at", "terminated_at",
    "access_ip_v4", "access_ip_v6", "config_drive", "auto_disk_config", "locked",
    "reservation_id", "root_device_name", "launch_index", "created_at", "updated_at")


def _pairs(among) -> Any:
    """Tags, metadata and system metadata of a page in one query: (kind, uuid, key,
    value), metadata in the order it was written."""
    pairs = union_all(
        select(literal("tags").label("kind"), cm.Tag.resource_id.label("uuid"),
               cm.Tag.tag.label("key"), literal(None, Text).label("value"),
               literal(0).label("position")).where(among(cm.Tag.resource_id)),
        *(select(literal(kind), model.instance_uuid, model.key, model.value, model.id)
          .where(among(model.instance_uuid), model.deleted == 0)
          for kind, model in (("metadata", cm.InstanceMetadata),
                              ("system_metadata", cm.InstanceSystemMetadata)))).subquery()
    return select(pairs).order_by(pairs.c.position)


def _shown(among) -> Any:
    """Everything but the row a list's body shows of a page's servers, in one query:
    (kind, uuid, position, key, value, code, flag, at, info), in the order each
    kind was written. Tags, metadata and ``locked_reason``; a port's network,
    address and info (JSON text); a volume's id and ``delete_on_termination``; a
    fault's message, details, code and time. Four queries of a cell that has none
    of these (a server of the seeded clouds has none) cost more than one that
    returns them all; the first select types the columns every kind shares."""
    def none(kind) -> Any:
        if kind is Boolean:
            # a boolean NULL: MariaDB has no CAST to one, and PostgreSQL will not
            # match an untyped NULL with a boolean column across a union
            return case((false(), true()))
        if kind is Text:
            # a plain NULL: a cast to text takes the connection's collation, which
            # MariaDB will not mix with the columns' (a deployment's databases have
            # one of their own); PostgreSQL types a NULL by the text columns it meets
            return type_coerce(null(), Text)
        return cast(null(), kind)
    tag, meta, system = cm.Tag, cm.InstanceMetadata, cm.InstanceSystemMetadata
    vif, bdm, fault = cm.VirtualInterface, cm.BlockDeviceMapping, cm.InstanceFault
    shown = union_all(
        select(literal("tags").label("kind"), tag.resource_id.label("uuid"),
               cast(literal(0), Integer).label("position"), tag.tag.label("key"),
               none(Text).label("value"), none(Integer).label("code"),
               none(Boolean).label("flag"), none(DateTime).label("at"),
               none(Text).label("info")).where(among(tag.resource_id)),
        select(literal("metadata"), meta.instance_uuid, meta.id, meta.key, meta.value,
               none(Integer), none(Boolean), none(DateTime), none(Text))
        .where(among(meta.instance_uuid), meta.deleted == 0),
        select(literal("system_metadata"), system.instance_uuid, system.id, system.key,
               system.value, none(Integer), none(Boolean), none(DateTime), none(Text))
        .where(among(system.instance_uuid), system.deleted == 0,
               system.key == "locked_reason"),
        select(literal("vifs"), vif.instance_uuid, vif.id, vif.network_id, vif.address,
               none(Integer), none(Boolean), none(DateTime), type_coerce(vif.info, Text))
        .where(among(vif.instance_uuid), vif.deleted == 0),
        select(literal("bdms"), bdm.instance_uuid, bdm.id, bdm.volume_id, none(Text),
               none(Integer), bdm.delete_on_termination, none(DateTime), none(Text))
        .where(among(bdm.instance_uuid), bdm.deleted == 0, bdm.volume_id.is_not(None)),
        select(literal("fault"), fault.instance_uuid, fault.id, fault.message,
               fault.details, fault.code, none(Boolean), fault.created_at, none(Text))
        .where(among(fault.instance_uuid))).subquery()
    return select(shown).order_by(shown.c.position)


def _owned(model, *order) -> InList:
    table = model.__table__
    return InList(lambda among: select(table).where(
        among(table.c.instance_uuid), table.c.deleted == 0).order_by(*order))


@dataclass(frozen=True)
class _Shape:
    """The statements that load a page one way (whole, or as a list shows it). Each is
    built once, over the page's uuids bound at execution (``InList``)."""

    #: the JSON columns of the extra read, as stored text (see ``_decoder``)
    extras: tuple[str, ...]
    #: a server's row and its extra in one query (``instance_uuid`` is unique in extras)
    instances: InList
    #: whole: tags and metadata (``_pairs``), then ports, block devices, faults
    pairs: InList | None = None
    owned: tuple[tuple[str, InList], ...] = ()
    faults: InList | None = None
    #: as a list shows it: all of that in one query (``_shown``)
    shown: InList | None = None


def _instances(columns: Sequence[str] | None, extras: tuple[str, ...]) -> InList:
    chosen = [_INSTANCES] if columns is None else [_INSTANCES.c[name] for name in columns]
    labelled = [type_coerce(_EXTRAS.c[name], Text).label(f"_extra_{name}") for name in extras]
    return InList(lambda among: (
        select(*chosen, *labelled)
        .select_from(_INSTANCES.outerjoin(_EXTRAS, _EXTRAS.c.instance_uuid == _INSTANCES.c.uuid))
        .where(among(_INSTANCES.c.uuid))))


_FAULTS = cm.InstanceFault.__table__
_FULL_EXTRAS = ("flavor", "keypairs", "request_networks")
_FULL = _Shape(
    extras=_FULL_EXTRAS, instances=_instances(None, _FULL_EXTRAS),
    pairs=InList(_pairs),
    owned=(("vifs", _owned(cm.VirtualInterface, cm.VirtualInterface.id)),
           ("bdms", _owned(cm.BlockDeviceMapping, cm.BlockDeviceMapping.id))),
    faults=InList(lambda among: select(_FAULTS).where(
        among(_FAULTS.c.instance_uuid)).order_by(_FAULTS.c.id.desc())))
_BRIEF = _Shape(extras=("flavor",), instances=_instances(LIST_COLUMNS, ("flavor",)),
                shown=InList(_shown))


def _records(s, stmt: InList, uuids: list[str]) -> Iterable[dict[str, Any]]:
    """The statement's rows as plain dicts of every column: Core rows zipped with their
    keys, since ORM objects (or ``Row._asdict``) cost more than the queries themselves."""
    result = stmt.execute(s, uuids)
    keys = list(result.keys())
    return (dict(zip(keys, row, strict=True)) for row in result)


def _decoder() -> Callable[[str | None], Any]:
    """JSON text to values, each distinct text decoded once: the servers of a page
    mostly share a few flavors, so their copies are read once per load, not per server.
    Servers with equal text then share the decoded value, which readers must not change."""
    memo: dict[str, Any] = {}

    def decode(raw: str | None) -> Any:
        if raw is None:
            return None
        try:
            return memo[raw]
        except KeyError:
            value = memo[raw] = json.loads(raw)
            return value
    return decode


def load_one(s, uuid: str, include_hidden: bool = False) -> dict[str, Any] | None:
    """One live server (visible, or also hidden) as ``instance.get`` returns it, read as
    a page of one: five queries over plain rows instead of nine over ORM objects."""
    return _load_part(s, [uuid], _FULL, include_hidden).get(uuid)


def _load_part(s, uuids: list[str], shape: _Shape,
               include_hidden: bool = False) -> dict[str, dict]:
    servers: dict[str, dict] = {}
    decode = _decoder()
    labels = [f"_extra_{name}" for name in shape.extras]
    # live and visible are tested here, not in SQL: given "deleted = 0" next to the uuids,
    # SQLite may walk the (deleted, created_at) index, every row of the cell, instead of
    # looking up each uuid
    for data in _records(s, shape.instances, uuids):
        extras = dict(zip(shape.extras, (decode(data.pop(label)) for label in labels),
                          strict=True))
        if data["deleted"] or (data["hidden"] and not include_hidden):
            continue
        flavors = extras.pop("flavor") or {}
        data.update(flavor=flavors.get("cur"), tags=[], metadata={}, system_metadata={},
                    vifs=[], bdms=[], fault=None)
        if shape is _FULL:
            data.update(old_flavor=flavors.get("old"), new_flavor=flavors.get("new"),
                        **extras)
        servers[data["uuid"]] = data
    if not servers:
        return servers
    found = list(servers)
    if shape.shown is not None:
        _load_shown(s, shape.shown, servers, decode)
        return servers
    assert shape.pairs is not None and shape.faults is not None
    for kind, uuid, key, value, _ in shape.pairs.execute(s, found):
        if kind == "tags":
            servers[uuid]["tags"].append(key)
        else:
            servers[uuid][kind][key] = value
    for data in servers.values():
        if data["tags"]:
            data["tags"].sort()
    for key, stmt in shape.owned:
        for owned in _records(s, stmt, found):
            servers[owned["instance_uuid"]][key].append(owned)
    for fault in _records(s, shape.faults, found):
        data = servers[fault["instance_uuid"]]
        if data["fault"] is None:
            data["fault"] = fault
    return servers


def _load_shown(s, stmt: InList, servers: dict[str, dict],
                decode: Callable[[str | None], Any]) -> None:
    """``_shown``'s rows into the servers, each part as ``_load_part`` shapes it whole
    but with only the keys a list's body reads."""
    for kind, uuid, _, key, value, code, flag, at, info in stmt.execute(s, list(servers)):
        data = servers[uuid]
        if kind == "tags":
            data["tags"].append(key)
        elif kind == "vifs":
            data["vifs"].append({"network_id": key, "address": value, "info": decode(info)})
        elif kind == "bdms":
            data["bdms"].append({"volume_id": key, "delete_on_termination": flag})
        elif kind == "fault":
            # in the order written: the last is the newest, the one a body shows
            data["fault"] = {"code": code, "message": key, "details": value,
                             "created_at": at}
        else:
            data[kind][key] = value
    for data in servers.values():
        if data["tags"]:
            data["tags"].sort()


# --- the list ---------------------------------------------------------------

def _marker_values(ctx, query: ListQuery) -> tuple:
    """The marker's sort values, read in its own cell through its instance mapping;
    Nova's 400 when it is unknown, deleted, or another project's (for a non-admin)."""
    marker = query.marker
    mapping = cells.instance_mapping(marker) if marker else None
    if mapping is None or mapping["cell"] is None or (
            not ctx.is_admin and mapping["project_id"] != ctx.project_id):
        raise exception.Invalid(f"marker [{marker}] not found")

    def read(cell: cells.Cell) -> tuple | None:
        columns = [_column(name) for name, _ in query.sort]
        with cell_session(cell) as s:
            row = s.execute(select(*columns).where(cm.Instance.uuid == marker,
                                                   cm.Instance.deleted == 0,
                                                   cm.Instance.hidden.is_(False))).first()
        return tuple(row) if row is not None else None

    try:
        _, values = cells.read_where_mapped(marker, lambda c: cells.read_one(c, read), mapping)
    except cells.CellUnavailable:
        values = None
    if values is None:
        raise exception.Invalid(f"marker [{marker}] not found")
    return values


def _gather(cell_list: list[cells.Cell], fn: Callable[[cells.Cell], Any],
            parallel: bool) -> cells.Gathered:
    """Every cell at once, or (``parallel`` off) one after the other, each with the
    same per-cell timeout and the same notion of a down cell."""
    if parallel:
        return cells.gather(cell_list, fn)
    gathered: cells.Gathered = cells.Gathered()
    for cell in cell_list:
        one = cells.gather([cell], fn)
        gathered.results.update(one.results)
        gathered.down.extend(one.down)
    return gathered


def parallel_cells(cell_list: Sequence[cells.Cell] = ()) -> bool:
    """Whether to read ``cell_list`` in parallel threads: as ``[api]
    list_parallel_cells`` says, or, unset, only when some cell is not a SQLite file.

    A cell across a network spends a read waiting on round trips, with the
    interpreter lock released, so reading the cells at once overlaps those
    waits. A SQLite cell spends it stepping through rows and turning them
    into Python values, nearly all of it holding the lock: threads then
    overlap nothing, and their switching costs CPU (a 1,000-server page of
    ten SQLite cells took 100 ms of CPU read one after the other and 166 ms in
    threads, on two cores).
    """
    from transcell.conf import CONF
    chosen = CONF.api.list_parallel_cells
    if chosen is not None:
        return bool(chosen)
    return any(not c.database_connection.startswith("sqlite") for c in cell_list)


def list_servers(ctx, query: ListQuery, parallel: bool | None = None) -> Listed:
    """A page of servers across every cell, in ``query.sort`` order, after the marker."""
    after = _marker_values(ctx, query) if query.marker else None
    cell_list = cells.list_cells()
    if parallel is None:
        parallel = parallel_cells(cell_list)
    if query.limit <= 0:
        return Listed([], [], set())
    if query.checks:
        gathered = _gather(cell_list, lambda c: read_checked(c, query, after), parallel)
        streams = [gathered.results[c] for c in cell_list if c in gathered.results]
        winners = merge(query.sort, streams, query.limit)
        return Listed([row[2] for row in winners], gathered.down,
                      {row[1] for rows in streams for row in rows})
    pages, down, winners = read_pages(cell_list, query, after, parallel)
    seen = {row[1] for rows in pages.values() for row in rows}
    by_cell: dict[cells.Cell, list[str]] = {}
    for _, uuid, cell in winners:
        by_cell.setdefault(cell, []).append(uuid)

    def read_full(cell: cells.Cell) -> dict[str, dict]:
        with cell_session(cell) as s:
            return load(s, by_cell[cell], brief=True)

    loaded = _gather(list(by_cell), read_full, parallel)
    full: dict[str, dict] = {}
    for servers in loaded.results.values():
        full.update(servers)
    servers = [full[uuid] for _, uuid, _ in winners if uuid in full]
    return Listed(servers, [*down, *(c for c in loaded.down if c not in down)], seen)

