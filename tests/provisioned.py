"""Databases with users of their own, as the distributed layout provisions them, for tests.

Names carry a prefix of their own (not dbfixtures'), so a cleanup here can never
touch another test's databases; every test drops exactly what it created.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass, field

import dbfixtures
import pytest

from transcell.db import session
from transcell.deploy import databases

PREFIX = "tcdeploy_t_"

ENGINE_PARAMS = [pytest.param(engine, id=engine, marks=[pytest.mark.backends])
                 for engine in databases.ENGINES]


def require(engine: str) -> None:
    """Skip, or fail under CI=true, when ``engine``'s server does not answer."""
    dbfixtures.require(dbfixtures.POSTGRESQL if engine == databases.POSTGRESQL
                       else dbfixtures.MARIADB)


@dataclass
class Provisioned:
    engine: str
    name: str
    user: str
    password: str
    url: str


@dataclass
class Provisioner:
    """Creates uniquely named database/user pairs and drops all of them afterwards."""

    run: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    made: list[Provisioned] = field(default_factory=list)

    def create(self, engine: str, role: str) -> Provisioned:
        require(engine)
        name = f"{PREFIX}{self.run}_{role}"
        password = secrets.token_urlsafe(12)
        url = databases.ensure_database(engine, name, name, password)
        made = Provisioned(engine, name, name, password, url)
        self.made.append(made)
        return made

    def drop_all(self) -> None:
        for made in reversed(self.made):
            # this process's pooled connections first, so DROP has nothing to wait on
            session.get_engine(made.url).dispose()
            databases.drop_database(made.engine, made.name, made.user)
        self.made.clear()
