"""The shortcuts a page of servers takes must write what the long ways wrote.

Timestamps by ``isoformat`` rather than ``strftime``, links without ``quote``
when nothing needs quoting, bodies by orjson rather than ``json.dumps``, and
JSON text decoded once per distinct text: each is checked against the way it
replaces, over generated values, and the garbage collector's threshold is
only ever raised.
"""

from __future__ import annotations

import datetime as dt
import gc
import json
import urllib.parse

import pytest
import webob
from hypothesis import given
from hypothesis import strategies as st

from transcell.api.compute import app as compute_app
from transcell.api.compute import common
from transcell.compute import server_list
from transcell.db.types import isotime, isotime_micro
from transcell.wsgi.app import dump_json, json_response

zones = st.sampled_from([None, dt.UTC, dt.timezone(dt.timedelta(hours=5, minutes=30))])


@given(st.datetimes(min_value=dt.datetime(1, 1, 1)), zones)
def test_timestamps_are_written_as_strftime_writes_them(value, zone):
    value = value.replace(tzinfo=zone)
    assert isotime(value) == value.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert isotime_micro(value) == value.strftime("%Y-%m-%dT%H:%M:%S.%f")
    assert isotime(None) is None


@given(st.one_of(st.text(), st.uuids().map(str), st.integers()))
def test_links_are_quoted_as_quote_quotes_them(ident):
    req = webob.Request.blank("/v2.1/servers", base_url="http://h:8774/compute")
    quoted = urllib.parse.quote(str(ident), safe="")
    assert common.resource_links(req, "servers", ident) == [
        {"rel": "self", "href": f"http://h:8774/compute/v2.1/servers/{quoted}"},
        {"rel": "bookmark", "href": f"http://h:8774/compute/servers/{quoted}"}]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text()
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.text() | st.integers() | st.booleans(), inner, max_size=4),
    max_leaves=20)


@given(json_values)
def test_a_fast_body_is_the_document_json_dumps_writes(value):
    assert json.loads(dump_json(value)) == json.loads(json.dumps(value))


def test_a_fast_body_refuses_what_json_dumps_refuses():
    with pytest.raises(TypeError):
        dump_json({"when": dt.datetime(2026, 1, 1)})
    # past 64 bits orjson gives up and json.dumps writes it
    assert json.loads(dump_json({"n": 2 ** 70})) == {"n": 2 ** 70}
    assert json_response({"a": [1, "é"]}, fast=True).json == {"a": [1, "é"]}
    assert json_response({"a": 1}).body == json.dumps({"a": 1}).encode()


def test_equal_json_text_is_decoded_once():
    decode = server_list._decoder()
    text = json.dumps({"cur": {"flavorid": "1"}})
    first, second = decode(text), decode(str(text))
    assert first == {"cur": {"flavorid": "1"}} and first is second
    assert decode(None) is None
    assert decode("[1]") == [1]
    assert server_list._decoder()(text) is not first  # a memo per load, not for ever


def test_the_young_generation_threshold_is_raised_never_lowered():
    before = gc.get_threshold()
    try:
        gc.set_threshold(700, 10, 10)
        compute_app.tune_gc()
        assert gc.get_threshold() == (compute_app.GC_YOUNG_THRESHOLD, 10, 10)
        gc.set_threshold(compute_app.GC_YOUNG_THRESHOLD * 2, 5, 5)
        compute_app.tune_gc()
        assert gc.get_threshold() == (compute_app.GC_YOUNG_THRESHOLD * 2, 5, 5)
    finally:
        gc.set_threshold(*before)


def test_a_rounds_sorted_read_is_built_once_and_as_built_fresh():
    query = server_list.ListQuery({"project_id": "p"}, list(server_list.DEFAULT_SORT), 10)
    after = (dt.datetime(2026, 1, 1), 7, "u")
    first = server_list._sorted_query(query, after, 5)
    assert server_list._sorted_query(query, list(after), 5) is first
    other = server_list._sorted_query(query, None, 5)
    assert other is not first and server_list._sorted_query(query, after, 6) is not first
    fresh = server_list.ListQuery({"project_id": "p"}, list(server_list.DEFAULT_SORT), 10)
    rebuilt = server_list._sorted_query(fresh, after, 5)
    assert str(rebuilt.compile(compile_kwargs={"literal_binds": True})) == \
        str(first.compile(compile_kwargs={"literal_binds": True}))
