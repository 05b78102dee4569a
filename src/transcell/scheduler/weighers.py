"""Host weighers: higher is better. Each returns a raw score; scores are
normalised to 0..1 across the candidates and multiplied, as Nova does, so one
weigher's scale cannot drown the others."""

from __future__ import annotations

from collections.abc import Callable

from transcell.scheduler.host_state import HostState

Weigher = tuple[Callable[[HostState, dict], float], float]


def ram_spread(host: HostState, spec: dict) -> float:
    """Prefer the emptiest host: spreads servers across hosts."""
    return host.free_ram_mb


def disk_spread(host: HostState, spec: dict) -> float:
    return host.free_disk_gb


WEIGHERS: list[Weigher] = [(ram_spread, 1.0), (disk_spread, 0.5)]


def _normalise(values: list[float]) -> list[float]:
    low, high = min(values), max(values)
    if high == low:
        return [0.0 for _ in values]
    return [(v - low) / (high - low) for v in values]


def weigh(hosts: list[HostState], spec: dict) -> list[HostState]:
    if not hosts:
        return hosts
    for host in hosts:
        host.weight = 0.0
    for weigher, multiplier in WEIGHERS:
        scores = _normalise([weigher(h, spec) for h in hosts])
        for host, score in zip(hosts, scores, strict=True):
            host.weight += multiplier * score
    return sorted(hosts, key=lambda h: (-h.weight, h.host))
