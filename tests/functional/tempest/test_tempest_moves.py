"""Unmodified Tempest from PyPI against ``transcell up``: resize and cold migration.

The cloud has two cells with one compute host each, so every resize and
migration Tempest asks for can only land in the other cell. Tempest runs once,
serially, over exactly the tests in ``TEMPEST_TESTS``; each one is then a pytest
item that passes only if Tempest ran it and it passed. A skip is a failure
(it would mean the workspace switched the feature off), and so is a test that
never ran.

Run just these: ``.venv/bin/pytest -m tempest``. Tempest's workspace (config,
accounts, ``tempest.log`` with every request and response, the subunit stream)
stays under pytest's basetemp, ``tempest-workspace*``.
"""

from __future__ import annotations

import pytest
import tempest_workspace as tw

MIGRATIONS = "tempest.api.compute.admin.test_migrations.MigrationsAdminTest"
ACTIONS = "tempest.api.compute.servers.test_server_actions"
NEGATIVE = "tempest.api.compute.servers.test_servers_negative.ServersNegativeTestJSON"
ADMIN_NEGATIVE = ("tempest.api.compute.admin.test_servers_negative."
                  "ServersAdminNegativeTestJSON")
DELETE = "tempest.api.compute.servers.test_delete_server.DeleteServersTestJSON"

#: Every Tempest test this suite must pass. The list lives here and only here.
TEMPEST_TESTS: tuple[str, ...] = (
    f"{MIGRATIONS}.test_list_migrations",
    f"{MIGRATIONS}.test_list_migrations_in_flavor_resize_situation",
    f"{MIGRATIONS}.test_resize_server_revert_deleted_flavor",
    f"{MIGRATIONS}.test_cold_migration",
    f"{MIGRATIONS}.test_revert_cold_migration",
    f"{MIGRATIONS}.test_cold_migration_with_swap",
    f"{ACTIONS}.ServerActionsTestJSON.test_resize_server_confirm",
    f"{ACTIONS}.ServerActionsTestJSON.test_resize_server_revert",
    f"{ACTIONS}.ServerActionsTestOtherB.test_resize_server_confirm_from_stopped",
    f"{NEGATIVE}.test_resize_nonexistent_server",
    f"{NEGATIVE}.test_resize_server_with_non_existent_flavor",
    f"{NEGATIVE}.test_resize_server_with_null_flavor",
    f"{ADMIN_NEGATIVE}.test_migrate_non_existent_server",
    f"{DELETE}.test_delete_server_while_in_verify_resize_state",
)

KNOWN_FAILURES: dict[str, str] = {}

#: The whole Tempest run, the cloud's start aside: under a minute when every move
#: works (each test takes under 6 s), about 4 when each of the known failures waits
#: out [compute] build_timeout (30 s).
RUN_TIMEOUT = 480

pytestmark = [pytest.mark.tempest, pytest.mark.timeout(RUN_TIMEOUT + 120)]


@pytest.fixture(scope="module")
def tempest_run(tempest_cloud, tmp_path_factory) -> tw.TempestRun:
    workspace = str(tmp_path_factory.mktemp("tempest-workspace"))
    config_file = tw.write_workspace(tempest_cloud, workspace, TEMPEST_TESTS)
    return tw.run_tempest(workspace, config_file, timeout=RUN_TIMEOUT)


def test_tempest_ran_exactly_the_listed_tests(tempest_run):
    """The include list selects every listed test and nothing else, class setups
    and teardowns all succeed, and the run finished in time."""
    tw.check_ran_exactly(tempest_run, TEMPEST_TESTS, RUN_TIMEOUT)


def _param(name: str):
    marks = []
    if name in KNOWN_FAILURES:
        marks.append(pytest.mark.xfail(reason=KNOWN_FAILURES[name], strict=False,
                                       raises=tw.TempestTestFailed))
    short = ".".join(name.rsplit(".", 2)[-2:])
    return pytest.param(name, id=short, marks=marks)


@pytest.mark.parametrize("name", [_param(name) for name in TEMPEST_TESTS])
def test_listed_tempest_test(tempest_run, name):
    tw.check_passed(tempest_run, name)
