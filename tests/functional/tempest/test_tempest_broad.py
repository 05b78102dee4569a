"""Unmodified Tempest from PyPI against ``transcell up``: the broad run.

The whole ``tempest.api.compute`` tree, Glance v2, and the Neutron tests for what
the network subset serves (``broad_workspace.BROAD_INCLUDE``), with every feature
transcell builds switched on (``broad_workspace.COMPUTE_FEATURES``), on two
workers, against two cells of one compute host each.

The goal is no failure; until then a failure is allowed only when
``broad_known_failures.txt`` lists it with its reason, and a listed test that
stops failing fails the run too, so the list only shrinks. A skip is a feature
switched off in the workspace or an extension the cloud does not list;
``broad_table.py`` turns the run into the README's table with the skip reasons.

Not part of the everyday run (``-m "not tempest_broad"`` in pytest's addopts);
``make test-tempest-broad`` runs it, and ``make test`` calls that. The subunit
stream is copied to ``$TRANSCELL_TEMPEST_BROAD_OUT`` when that is set.
"""

from __future__ import annotations

import os
import shutil

import broad_workspace as bw
import pytest
import tempest_workspace as tw
from cloudclients import CloudProcess, start_cloud, stop_cloud

#: About 9 minutes on two cores shared with other work (the cloud's start included);
#: the cap leaves room for a slow machine.
RUN_TIMEOUT = 1800
#: Fewer results than this means the include list or Tempest's discovery broke.
MIN_TESTS = 700
KNOWN_FAILURES_FILE = os.path.join(os.path.dirname(__file__), "broad_known_failures.txt")

pytestmark = [pytest.mark.tempest_broad, pytest.mark.slow, pytest.mark.timeout(RUN_TIMEOUT + 300)]


def known_failures(path: str = KNOWN_FAILURES_FILE) -> dict[str, str]:
    """``test id -> reason`` from the checked-in list (``id  # reason`` lines)."""
    listed: dict[str, str] = {}
    with open(path) as fh:
        for raw in fh:
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            name, _, reason = line.partition(" # ")
            listed[name.strip()] = reason.strip()
    return listed


@pytest.fixture(scope="module")
def broad_cloud(tmp_path_factory):
    state_dir = str(tmp_path_factory.mktemp("tempest-broad-cloud"))
    extra_accounts = bw.provision_extra_accounts(state_dir)
    proc = start_cloud(state_dir, ("--cells", "2", "--hosts-per-cell", "1"))
    try:
        yield CloudProcess(state_dir, proc.port), extra_accounts
    finally:
        stop_cloud(proc)


@pytest.fixture(scope="module")
def broad_run(broad_cloud, tmp_path_factory) -> tw.TempestRun:
    cloud, extra_accounts = broad_cloud
    workspace = str(tmp_path_factory.mktemp("tempest-broad-workspace"))
    config_file = bw.write_broad_workspace(cloud, workspace, extra_accounts)
    run = bw.run_broad(workspace, config_file, timeout=RUN_TIMEOUT)
    out = os.environ.get("TRANSCELL_TEMPEST_BROAD_OUT")
    if out:
        os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
        shutil.copyfile(os.path.join(workspace, "tempest.subunit"), out)
    return run


def _failures(run: tw.TempestRun) -> dict[str, list[bw.Outcome]]:
    """Known-failures key (a test id, or the id of a class setup that failed) ->
    the tests that failed under it."""
    failed: dict[str, list[bw.Outcome]] = {}
    for outcome in bw.outcomes(run.results):
        if outcome.status == "failed":
            failed.setdefault(outcome.key, []).append(outcome)
    return failed


def test_broad_run_finished(broad_run):
    """Tempest ran the whole selection to its end, in time."""
    found = bw.outcomes(broad_run.results)
    ran = len([o for o in found if o.status != "unfinished"])
    problems = []
    if broad_run.timed_out:
        problems.append(f"tempest run did not finish within {RUN_TIMEOUT}s")
    if ran < MIN_TESTS:
        problems.append(f"only {ran} tests ran (expected at least {MIN_TESTS})")
    unfinished = sorted(o.name for o in found if o.status == "unfinished")
    if unfinished and not broad_run.timed_out:
        problems.append("never finished: " + ", ".join(unfinished))
    if problems:
        pytest.fail("\n".join(problems) + "\n" + broad_run.stderr[-3000:] + "\n"
                    + tw.where(broad_run), pytrace=False)


def test_no_failure_outside_the_known_list(broad_run):
    """Every failure (a class setup's counts once) is on the list, with its reason."""
    listed = known_failures()
    unexpected = [outcomes[0].result for key, outcomes in sorted(_failures(broad_run).items())
                  if key not in listed]
    if unexpected:
        pytest.fail(f"{len(unexpected)} failures not in {KNOWN_FAILURES_FILE}:\n\n"
                    + "\n\n".join(r.explanation(6) for r in unexpected) + "\n"
                    + tw.where(broad_run), pytrace=False)


def test_known_failures_still_fail(broad_run):
    """A listed test that passes, skips or no longer exists comes off the list."""
    failed = _failures(broad_run)
    seen = {o.key: o.status for o in bw.outcomes(broad_run.results)}
    stale = [f"{key}: {seen.get(key, 'did not run')}"
             for key in sorted(known_failures()) if key not in failed]
    if stale and not broad_run.timed_out:
        pytest.fail("no longer failing, take off the known-failures list:\n"
                    + "\n".join(stale), pytrace=False)
