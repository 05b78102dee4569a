"""``column IN (values)`` for a list given at execution, built once per kind of engine.

SQLAlchemy's expanding parameter rewrites the statement and binds one
parameter per value at every execution; a page of a thousand servers spread
over ten cells pays that for every table it reads, about a tenth of a
millisecond per hundred values, which adds up to more than the queries
themselves on SQLite. On SQLite the list is therefore bound as one JSON text
and read back with ``json_each`` (the engine still looks each value up in the
column's index); other engines, reached over a network where a round trip
costs far more than binding, keep the expanding parameter.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from typing import Any

import orjson
from sqlalchemy import bindparam, func, select
from sqlalchemy.engine import Result
from sqlalchemy.sql import ColumnElement, Executable

#: json_each is built into SQLite from 3.38 on; before that it may be missing.
JSON_EACH = sqlite3.sqlite_version_info >= (3, 38)

Among = Callable[[Any], ColumnElement[bool]]


def _among(as_json: bool, name: str) -> Among:
    def among(column: Any) -> ColumnElement[bool]:
        if as_json:
            values = func.json_each(bindparam(name)).table_valued("value")
            return column.in_(select(values.c.value))
        return column.in_(bindparam(name, expanding=True))
    return among


class InList:
    """A statement over a list of values, ``build(among)`` calling ``among(column)``
    wherever it tests a column against the list (as often as it likes)."""

    def __init__(self, build: Callable[[Among], Executable], name: str = "values") -> None:
        self.name = name
        self.statements = {as_json: build(_among(as_json, name)) for as_json in (False, True)}

    def execute(self, session, values: Sequence[Any]) -> Result:
        as_json = JSON_EACH and session.get_bind().dialect.name == "sqlite"
        # orjson: a page's load binds its uuids five times per cell, and ``json.dumps``
        # of a hundred of them costs more than SQLite looking them up
        bound = orjson.dumps(list(values)).decode() if as_json else list(values)
        # on the session's connection: a Core statement needs none of the ORM's steps
        return session.connection().execute(self.statements[as_json], {self.name: bound})
