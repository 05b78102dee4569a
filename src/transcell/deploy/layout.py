"""What a distributed deployment on this machine is made of, decided once.

The first ``transcell up --distributed`` on a state directory picks a short
prefix, the engine of every database (mixed on purpose: odd cells on MariaDB,
the rest on PostgreSQL), and a password for every database user and broker
user; ``STATE/distributed.json`` keeps them, so a restart finds the same
databases, vhosts and credentials. From the layout come the configuration
files, one per service, each naming only what that service may reach: a cell's
hosts get their own cell's database and vhost and nothing of the API tier.
"""

from __future__ import annotations

import configparser
import io
import json
import os
import secrets
from dataclasses import asdict, dataclass, field

from transcell import statefiles

LAYOUT_NAME = "distributed.json"
POSTGRESQL = "postgresql"
MARIADB = "mariadb"
DB_PORTS = {POSTGRESQL: 5432, MARIADB: 3306}
RABBIT_PORT = 5672


def _secret() -> str:
    return secrets.token_urlsafe(18)


@dataclass
class Layout:
    prefix: str
    cells: int
    hosts_per_cell: int
    cell_uuids: dict[str, str] = field(default_factory=dict)
    engines: dict[str, str] = field(default_factory=dict)
    passwords: dict[str, str] = field(default_factory=dict)

    # names ---------------------------------------------------------------
    @property
    def cell_names(self) -> list[str]:
        return [f"cell{i}" for i in range(1, self.cells + 1)]

    def hosts(self, cell: str) -> list[str]:
        return [f"{cell}-host{i}" for i in range(1, self.hosts_per_cell + 1)]

    @property
    def databases(self) -> list[str]:
        """Every database of the deployment, by role."""
        return ["api", "cell0", *self.cell_names, "network", "volume", "image", "placement",
                "keystone"]

    def db_name(self, role: str) -> str:
        return f"{self.prefix}_{role}"

    def db_user(self, role: str) -> str:
        return f"{self.prefix}_{role}"

    def vhost(self, bus: str) -> str:
        return f"{self.prefix}-{bus}"

    def rabbit_user(self, bus: str) -> str:
        return f"{self.prefix}-{bus}"

    @property
    def buses(self) -> list[str]:
        return ["api", *self.cell_names]

    def engine(self, role: str) -> str:
        return self.engines[role]

    def password(self, key: str) -> str:
        if key not in self.passwords:
            self.passwords[key] = _secret()
        return self.passwords[key]


def load_or_create(state_dir: str, cells: int, hosts_per_cell: int) -> Layout:
    """The layout of this state directory; grown (never shrunk) to the cells asked for."""
    path = os.path.join(state_dir, LAYOUT_NAME)
    if os.path.exists(path):
        with open(path) as fh:
            layout = Layout(**json.load(fh))
        layout.cells = max(layout.cells, cells)
        layout.hosts_per_cell = max(layout.hosts_per_cell, hosts_per_cell)
    else:
        layout = Layout(prefix="tc" + secrets.token_hex(4), cells=cells,
                        hosts_per_cell=hosts_per_cell)
    import uuid
    for index, name in enumerate(layout.cell_names, start=1):
        layout.cell_uuids.setdefault(name, str(uuid.uuid4()))
        layout.engines.setdefault(name, MARIADB if index % 2 else POSTGRESQL)
    for role in ("api", "cell0", "network", "volume", "image", "placement", "keystone"):
        layout.engines.setdefault(role, POSTGRESQL)
    for role in layout.databases:
        layout.password(f"db:{role}")
    for bus in layout.buses:
        layout.password(f"rabbit:{bus}")
    save(state_dir, layout)
    return layout


def save(state_dir: str, layout: Layout) -> None:
    statefiles.write_atomic(os.path.join(state_dir, LAYOUT_NAME),
                            json.dumps(asdict(layout), indent=2, sort_keys=True))


def render(sections: dict[str, dict[str, object]]) -> str:
    config = configparser.ConfigParser(interpolation=None)
    for section, options in sections.items():
        if section != "DEFAULT" and not config.has_section(section):
            config.add_section(section)
        for key, value in options.items():
            if value is None:
                continue
            if isinstance(value, bool):
                value = "true" if value else "false"
            config.set(section, key, str(value))
    text = io.StringIO()
    config.write(text)
    return text.getvalue()


def write_config(path: str, sections: dict[str, dict[str, object]]) -> str:
    """A service's config file, private: it holds that service's credentials."""
    statefiles.write_atomic(path, render(sections))
    return path
