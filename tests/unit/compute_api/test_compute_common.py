"""Shared compute API helpers: Nova's validation wording, booleans, names, links."""

from __future__ import annotations

import pytest
import webob

from transcell import exception
from transcell.api.compute import common

SCHEMA = {"type": "object",
          "properties": {"server": {"type": "object",
                                    "properties": {"name": common.NAME,
                                                   "count": {"type": "integer",
                                                             "minimum": 1}},
                                    "required": ["name"], "additionalProperties": False}},
          "required": ["server"], "additionalProperties": False}


def _message(body) -> str:
    with pytest.raises(exception.Invalid) as caught:
        common.validate(SCHEMA, body)
    assert caught.value.code == 400
    return caught.value.message


def test_validation_messages_follow_nova():
    assert _message({}) == "'server' is a required property"
    assert _message({"server": {"name": "a", "count": 0}}) == \
        "Invalid input for field/attribute count. Value: 0. 0 is less than the minimum of 1"
    assert _message({"server": {"name": "a\tb"}}) == (
        "An invalid 'name' value was provided. The name must be: printable characters. "
        "Can not start or end with whitespace.")
    common.validate(SCHEMA, {"server": {"name": "inner space ok", "count": 2}})


def test_names_are_printable_without_outer_spaces():
    assert common.valid_name("web 01")
    assert common.valid_name("café")
    assert not common.valid_name(" web")
    assert not common.valid_name("web\u00a0")
    assert not common.valid_name("a\nb")


def test_booleans_are_strict_or_lenient_as_asked():
    assert common.parse_bool("Yes") is True
    assert common.parse_bool("0") is False
    with pytest.raises(ValueError):
        common.parse_bool("perhaps")
    assert common.is_true("perhaps") is False
    assert common.is_true("on") is True


def test_uuid_likeness():
    assert common.is_uuid_like("7D3C3A52-8F39-4C0C-9D44-6A3BFA0F7D11")
    assert common.is_uuid_like("7d3c3a528f394c0c9d446a3bfa0f7d11")
    assert not common.is_uuid_like("1")
    assert not common.is_uuid_like(None)


def test_links_and_paging():
    req = webob.Request.blank("/v2.1/flavors?limit=2&minRam=1", base_url="http://h:8774/compute")
    assert common.resource_links(req, "flavors", "a b") == [
        {"rel": "self", "href": "http://h:8774/compute/v2.1/flavors/a%20b"},
        {"rel": "bookmark", "href": "http://h:8774/compute/flavors/a%20b"}]
    items = [{"id": "1"}, {"id": "2"}]
    assert common.collection_links(req, items, "flavors") == [
        {"rel": "next",
         "href": "http://h:8774/compute/v2.1/flavors?limit=2&minRam=1&marker=2"}]
    assert common.collection_links(req, items[:1], "flavors") == []
    assert common.limit_and_marker(req) == (2, None)
    assert common.page_after([1, 2, 3, 4], lambda x: x, 2, 1) == [3]
    with pytest.raises(exception.Invalid):
        common.page_after([1], lambda x: x, 9, 1)
