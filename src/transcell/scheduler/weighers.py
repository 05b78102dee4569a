"""Host weighers: higher is better.

Each weigher gives every candidate a raw score; the scores are normalised to
0..1 across the candidates and only then multiplied, per host, by the
weigher's multiplier, as Nova does. Normalising first keeps one weigher's
units (MB of RAM, GB of disk) from drowning the others; multiplying after
keeps a large multiplier large, which is what lets the cross-cell weigher
act as a hard preference rather than one more tie-breaker. A weigher whose
scores are all equal normalises to zero everywhere, i.e. it is neutral.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass

from transcell.conf import CONF
from transcell.scheduler import request
from transcell.scheduler.host_state import HostState

LOG = logging.getLogger(__name__)

CROSS_CELL_KEY = "cross_cell_move_weight_multiplier"


@dataclass(frozen=True)
class Weigher:
    name: str
    score: Callable[[HostState, dict], float]
    multiplier: Callable[[HostState], float]


def ram_spread(host: HostState, spec: dict) -> float:
    """Prefer the emptiest host: spreads servers across hosts."""
    return host.free_ram_mb


def disk_spread(host: HostState, spec: dict) -> float:
    return host.free_disk_gb


def cross_cell(host: HostState, spec: dict) -> float:
    """1 for a host in the moving server's current cell, 0 elsewhere and for builds.

    A move that may leave its cell should still stay when it can: the source
    cell already has the server's image cached, its network and its quota
    records, and a same-cell move is cheaper and less risky than a cross-cell
    one. With the default multiplier this outweighs every other weigher.
    """
    move = request.move(spec)
    if move is None:
        return 0.0
    return 1.0 if host.cell.uuid == move.source_cell_uuid else 0.0


def aggregate_multiplier(host: HostState, key: str, default: float) -> float:
    """The smallest value of ``key`` among the host's aggregates, else ``default``.

    As Nova's aggregate override: several aggregates may disagree, and the
    most conservative value wins. A value that is not a number makes the
    whole override fall back to ``default`` (with a warning), since the
    operator's intent cannot be read.
    """
    values = [meta[key] for meta in host.aggregates if key in meta]
    if not values:
        return default
    try:
        numbers = [float(v) for v in values]
    except ValueError:
        LOG.warning("Could not read aggregate %s values %s of host %s; using %s",
                    key, values, host.host, default)
        return default
    if not all(math.isfinite(n) for n in numbers):
        LOG.warning("Aggregate %s values %s of host %s are not finite; using %s",
                    key, values, host.host, default)
        return default
    return min(numbers)


def _cross_cell_multiplier(host: HostState) -> float:
    return aggregate_multiplier(host, CROSS_CELL_KEY,
                                CONF.scheduler.cross_cell_move_weight_multiplier)


WEIGHERS: list[Weigher] = [
    Weigher("ram", ram_spread, lambda host: 1.0),
    Weigher("disk", disk_spread, lambda host: 0.5),
    Weigher("cross_cell", cross_cell, _cross_cell_multiplier),
]


def normalise(values: list[float]) -> list[float]:
    low, high = min(values), max(values)
    if high == low:
        return [0.0 for _ in values]
    return [(v - low) / (high - low) for v in values]


def weigh(hosts: list[HostState], spec: dict) -> list[HostState]:
    """The hosts, best first; ties are broken by host name so the order is stable."""
    if not hosts:
        return hosts
    for host in hosts:
        host.weight = 0.0
    for weigher in WEIGHERS:
        scores = normalise([weigher.score(h, spec) for h in hosts])
        for host, score in zip(hosts, scores, strict=True):
            if score:
                host.weight += weigher.multiplier(host) * score
    return sorted(hosts, key=lambda h: (-h.weight, h.host))
