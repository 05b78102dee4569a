"""Storage backends, volume types and the operator's backend map, read from ``[volume]``.

A backend is a directory of sparse raw files (``<data_dir>/<backend>/volume-<id>``)
that the hosts of some cells reach. Whether a host may be handed a volume's
file, and where a volume must go when its server moves to a cell its backend
does not reach, is decided here and nowhere else.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass

from transcell import conf
from transcell.conf import CONF
from transcell.volume import exceptions as vexc

EVERY_CELL = "*"
#: Cinder's host@backend#pool, with transcell as the one volume service host
HOST_PREFIX = "transcell"


@dataclass(frozen=True)
class Backend:
    name: str
    cells: tuple[str, ...]  # ("*",) for every cell
    family: str

    def reaches(self, cell_name: str) -> bool:
        return EVERY_CELL in self.cells or cell_name in self.cells

    @property
    def host(self) -> str:
        return f"{HOST_PREFIX}@{self.name}#{self.name}"

    def cell_names(self, known: list[str] | None = None) -> list[str]:
        """The cells reached, '*' spelled out when the cells are known."""
        if EVERY_CELL in self.cells:
            return list(known) if known is not None else [EVERY_CELL]
        return list(self.cells)

    def directory(self) -> str:
        return os.path.join(conf.volume_data_dir(), self.name)

    def path(self, volume_id: str) -> str:
        return os.path.join(self.directory(), f"volume-{volume_id}")


@dataclass(frozen=True)
class VolumeType:
    name: str
    backend: str

    @property
    def id(self) -> str:
        """Stable across restarts and processes: derived from the name."""
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"transcell-volume-type:{self.name}"))


def _split(item: str, parts: int, option: str) -> list[str]:
    fields = [field.strip() for field in item.split(":")]
    if len(fields) != parts or not all(fields):
        raise vexc.InvalidInput(reason=f"[volume] {option} entry {item!r} is malformed")
    return fields


def backends() -> dict[str, Backend]:
    found: dict[str, Backend] = {}
    for item in CONF.volume.backends:
        name, cells, family = _split(item, 3, "backends")
        found[name] = Backend(name, tuple(c.strip() for c in cells.split("+") if c.strip()),
                              family)
    return found


def backend(name: str) -> Backend:
    try:
        return backends()[name]
    except KeyError:
        raise vexc.InvalidHost(reason=f"no backend named {name!r}") from None


def volume_types() -> dict[str, VolumeType]:
    found: dict[str, VolumeType] = {}
    known = backends()
    for item in CONF.volume.volume_types:
        name, backend_name = _split(item, 2, "volume_types")
        if backend_name not in known:
            raise vexc.InvalidInput(reason=f"volume type {name} names unknown backend "
                                           f"{backend_name}")
        found[name] = VolumeType(name, backend_name)
    return found


def default_type() -> VolumeType:
    types = volume_types()
    wanted = CONF.volume.default_volume_type
    if wanted in types:
        return types[wanted]
    if types:
        return next(iter(types.values()))
    raise vexc.VolumeTypeNotFoundByName(volume_type_name=wanted)


def find_type(name_or_id: str) -> VolumeType:
    """A type by name or id, as Cinder accepts either in ``volume_type``."""
    for vtype in volume_types().values():
        if name_or_id in (vtype.name, vtype.id):
            return vtype
    raise vexc.VolumeTypeNotFoundByName(volume_type_name=name_or_id)


def parse_host(host: str) -> Backend:
    """``transcell@B#B`` (or ``transcell@B``, or just ``B``) -> backend B."""
    text = host.strip()
    if "@" in text:
        prefix, _, rest = text.partition("@")
        if prefix != HOST_PREFIX:
            raise vexc.InvalidHost(reason=f"{host} is not a host of this volume service "
                                          f"({HOST_PREFIX}@BACKEND#BACKEND)")
        text = rest
    name, _, pool = text.partition("#")
    if pool and pool != name:
        raise vexc.InvalidHost(reason=f"{host}: backend {name} has only the pool {name}")
    return backend(name)


def move_target(source: Backend, target_cell: str) -> tuple[Backend | None, str]:
    """Where a volume on ``source`` goes when its server moves to ``target_cell``.

    The operator's map first (``SOURCE@CELL: TARGET``), then the first backend
    of the same family that reaches the cell. Returns (None, reason) when none does.
    """
    known = backends()
    mapped = CONF.volume.move_backend_map.get(f"{source.name}@{target_cell}")
    if mapped:
        chosen = known.get(mapped)
        if chosen is None:
            return None, (f"[volume] move_backend_map sends {source.name}@{target_cell} to "
                          f"unknown backend {mapped}")
        if not chosen.reaches(target_cell):
            return None, (f"[volume] move_backend_map sends {source.name}@{target_cell} to "
                          f"backend {mapped}, which cell {target_cell} does not reach")
        return chosen, f"operator's move_backend_map: {source.name}@{target_cell} -> {mapped}"
    for candidate in known.values():
        if candidate.name != source.name and candidate.family == source.family \
                and candidate.reaches(target_cell):
            return candidate, (f"backend {source.name} does not reach {target_cell}; "
                               f"{candidate.name} (family {source.family}) does")
    return None, (f"backend {source.name} does not reach cell {target_cell} and no other "
                  f"backend of family {source.family} does")
