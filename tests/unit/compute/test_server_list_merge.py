"""The cross-cell merge: per-cell sorted pages merged into Nova's one order.

Each "cell" here is a list of rows already sorted the way its database sorts
them; the merge of their first ``limit`` rows must equal the first ``limit``
rows of the whole set sorted at once, with created_at ties across cells broken
by id and then uuid ascending, and unset values first ascending, last descending.
"""

from __future__ import annotations

import datetime as dt
import functools
import random

import pytest

from transcell.compute import server_list

T0 = dt.datetime(2026, 1, 1)
DEFAULT = [("created_at", True), ("id", True), ("uuid", False)]


def _rows(seed: int, cells: int = 3, per_cell: int = 40) -> list[list[dict]]:
    """Per-cell rows with interleaved, often equal created_at and overlapping ids."""
    rng = random.Random(seed)
    out = []
    for cell in range(cells):
        rows = []
        for cell_id in range(1, per_cell + 1):
            rows.append({"created_at": T0 + dt.timedelta(seconds=rng.randrange(12)),
                         "id": cell_id,
                         "uuid": f"{rng.randrange(16**8):08x}-c{cell}",
                         "display_name": rng.choice([None, "a", "b", "B", "c"]),
                         "cell": cell})
        out.append(rows)
    return out


def _key(sort):
    return functools.cmp_to_key(lambda a, b: server_list.compare(sort, a, b))


def _values(sort, row) -> tuple:
    return tuple(row[name] for name, _ in sort)


def _cell_page(sort, rows, limit, after=None) -> list[tuple]:
    """What a cell returns: its rows sorted, after the marker values, cut to ``limit``."""
    key = _key(sort)
    ordered = sorted(rows, key=lambda r: key(_values(sort, r)))
    if after is not None:
        ordered = [r for r in ordered if server_list.compare(sort, _values(sort, r), after) > 0]
    return [(_values(sort, r), r["uuid"], r) for r in ordered[:limit]]


@pytest.mark.parametrize("sort", [
    DEFAULT,
    [("display_name", False), ("created_at", False), ("id", False), ("uuid", False)],
    [("display_name", True), ("created_at", True), ("id", True), ("uuid", False)],
])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_merged_pages_walk_the_single_sorted_list(sort, seed):
    cells = _rows(seed)
    key = _key(sort)
    everything = sorted((r for rows in cells for r in rows), key=lambda r: key(_values(sort, r)))
    walked: list[str] = []
    after = None
    while True:
        page = server_list.merge(sort, [_cell_page(sort, rows, 7, after) for rows in cells], 7)
        walked += [uuid for _, uuid, _ in page]
        if len(page) < 7:
            break
        after = page[-1][0]  # the marker's sort values stand for it in every cell
    assert walked == [r["uuid"] for r in everything]
    assert len(set(walked)) == len(walked) == 120


def test_ties_on_created_at_and_id_across_cells_fall_to_uuid_ascending():
    cells = [[{"created_at": T0, "id": 1, "uuid": u}] for u in ("c", "a", "b")]
    page = server_list.merge(DEFAULT, [_cell_page(DEFAULT, rows, 5) for rows in cells], 5)
    assert [uuid for _, uuid, _ in page] == ["a", "b", "c"]


def test_unset_values_sort_first_ascending_and_last_descending():
    rows = [(("x",), "1", None), ((None,), "2", None), (("a",), "3", None)]
    asc = [("display_name", False)]
    desc = [("display_name", True)]
    assert [r[1] for r in sorted(rows, key=lambda r: _key(asc)(r[0]))] == ["2", "3", "1"]
    assert [r[1] for r in sorted(rows, key=lambda r: _key(desc)(r[0]))] == ["1", "3", "2"]


def test_a_server_in_two_cells_mid_move_is_merged_once():
    row = {"created_at": T0, "id": 3, "uuid": "same"}
    other = {"created_at": T0, "id": 2, "uuid": "other"}
    page = server_list.merge(DEFAULT, [_cell_page(DEFAULT, [row], 5),
                                       _cell_page(DEFAULT, [row, other], 5)], 5)
    assert [uuid for _, uuid, _ in page] == ["same", "other"]


def test_the_merge_stops_at_the_limit():
    cells = _rows(4)
    pages = [_cell_page(DEFAULT, rows, 10) for rows in cells]
    assert len(server_list.merge(DEFAULT, pages, 10)) == 10
    assert server_list.merge(DEFAULT, [[], []], 10) == []


@pytest.mark.parametrize("sort", [
    [("progress", True), ("launched_at", False), ("locked", True), ("uuid", False)],
    [("launched_at", True), ("progress", False), ("id", True), ("uuid", False)],
])
def test_the_tuple_key_orders_as_compare_does(sort):
    """The merge's fast key (numbers negated, times turned around the epoch, unset
    values placed by direction) sorts exactly as Nova's comparison."""
    rng = random.Random(5)
    rows = [(rng.choice([None, 0, 10, 50, 100]),
             rng.choice([None, T0, T0 + dt.timedelta(seconds=3)]),
             rng.choice([True, False]), f"{n:04d}") for n in range(200)]
    rows = [dict(zip(("progress", "launched_at", "locked", "uuid"), r, strict=True)) | {
        "id": n % 7} for n, r in enumerate(rows)]
    values = [_values(sort, r) for r in rows]
    fast = server_list._tuple_key(sort)
    assert fast is not None
    assert sorted(values, key=fast) == sorted(values, key=_key(sort))
    assert server_list._tuple_key([("display_name", True)]) is None
