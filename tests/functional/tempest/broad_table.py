"""The broad Tempest run as the README's table.

    .venv/bin/python tests/functional/tempest/broad_table.py state/tempest-broad.subunit

prints Markdown: passed / failed / skipped per area, then the skip reasons
grouped (how many tests each one skipped, in which areas). ``--failures``
adds the failing tests' ids, one a line, as ``broad_known_failures.txt`` wants
them. The subunit stream is the one ``make test-tempest-broad`` keeps.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections import Counter, defaultdict

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [_HERE, os.path.dirname(os.path.dirname(_HERE))]

import broad_workspace as bw  # noqa: E402
import tempest_workspace as tw  # noqa: E402

_MICROVERSION = re.compile(r"The microversion range\[\S+ - latest\] of this test is out of "
                           r"the configuration range\[\S+ - (?P<max>\S+)\]\.")
_CLASS_PREFIX = re.compile(r"^\w+ skipped (?=as |because )")


def group_reason(reason: str) -> str:
    """One line per cause: microversion ranges and class names folded together."""
    match = _MICROVERSION.fullmatch(reason)
    if match:
        return f"Needs a microversion above the cloud's maximum ({match.group('max')})."
    return _CLASS_PREFIX.sub("Skipped ", reason)


def area(path: str) -> str:
    """``compute servers``, ``compute admin``, ``compute (top level)``,
    ``image v2``, ``image v2 admin``, ``network``..."""
    match = bw._FIXTURE.match(path)
    parts = (match.group("cls") if match else path).split(".")
    if parts[:3] == ["tempest", "api", "compute"]:
        sub = parts[3] if len(parts) > 3 else ""
        return "compute (top level)" if sub.startswith("test_") else f"compute {sub}"
    if parts[:4] == ["tempest", "api", "image", "v2"]:
        return "image v2 admin" if len(parts) > 4 and parts[4] == "admin" else "image v2"
    if parts[:3] == ["tempest", "api", "network"]:
        return "network"
    return ".".join(parts[:3])


def tally(results: dict[str, tw.TempestResult]):
    """Per area Counter of outcomes; skip reason -> Counter of areas; failing keys
    (test ids, or a failed class setup's id) with their last traceback line."""
    per_area: dict[str, Counter] = defaultdict(Counter)
    reasons: dict[str, Counter] = defaultdict(Counter)
    failures: dict[str, str] = {}
    for outcome in bw.outcomes(results):
        where = area(outcome.name)
        per_area[where][outcome.status] += 1
        if outcome.status == "skipped":
            reasons[group_reason(outcome.reason)][where] += 1
        elif outcome.status == "failed":
            failures[outcome.key] = outcome.reason
    return per_area, reasons, failures


def markdown(results: dict[str, tw.TempestResult], with_failures: bool = False) -> str:
    per_area, reasons, failures = tally(results)
    lines = ["| Area | Passed | Failed | Skipped |", "|---|---:|---:|---:|"]
    total: Counter = Counter()
    for name in sorted(per_area):
        counts = per_area[name]
        total.update(counts)
        lines.append(f"| {name} | {counts['passed']} | {counts['failed']} | "
                     f"{counts['skipped']} |")
    lines.append(f"| **total** | **{total['passed']}** | **{total['failed']}** | "
                 f"**{total['skipped']}** |")
    lines += ["", "| Skip reason (Tempest's words) | Tests | Areas |", "|---|---:|---|"]
    for reason, where in sorted(reasons.items(), key=lambda kv: -sum(kv[1].values())):
        areas = ", ".join(sorted(where))
        lines.append(f"| {reason.replace('|', '/')} | {sum(where.values())} | {areas} |")
    if total["unfinished"]:
        lines += ["", f"{total['unfinished']} tests never finished (the run was cut off)."]
    if with_failures:
        lines += ["", "Failing tests (known-failures ids):", ""]
        lines += [f"{key}  # {reason}" for key, reason in sorted(failures.items())]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("subunit", help="the run's subunit v2 stream")
    parser.add_argument("--failures", action="store_true",
                        help="also list the failing test ids")
    args = parser.parse_args(argv)
    with open(args.subunit, "rb") as fh:
        results = tw.parse_subunit(fh.read())
    sys.stdout.write(markdown(results, args.failures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
