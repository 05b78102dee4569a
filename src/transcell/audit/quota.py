"""Projects over quota, counted as the quota code counts: live visible rows, every cell.

Reported, never repaired: which servers to take away is the owner's choice.
"""

from __future__ import annotations

from transcell import quota
from transcell.audit import Problem
from transcell.audit.state import Snapshot


def check(snap: Snapshot) -> list[Problem]:
    used: dict[str, dict[str, int]] = {}
    for uuid in snap.rows:
        for _, row in snap.visible(uuid):
            totals = used.setdefault(row.project_id, {"instances": 0, "cores": 0, "ram": 0})
            totals["instances"] += 1
            totals["cores"] += row.vcpus or 0
            totals["ram"] += row.memory_mb or 0
    problems = []
    for project, totals in sorted(used.items()):
        limits = quota.limits(project)
        over = [f"{name} {totals[name]} of {limits[name]}" for name in quota.INSTANCE_RESOURCES
                if limits[name] != quota.UNLIMITED and totals[name] > limits[name]]
        if over:
            problems.append(Problem("over-quota",
                                    f"project {project} uses {', '.join(over)}", project))
    return problems
