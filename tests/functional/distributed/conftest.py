"""One ``transcell up --distributed --netns`` cloud for the tests of the layout itself:
every service its own process, each cell's hosts in that cell's network namespace."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest
from cloudclients import CloudProcess, start_cloud, stop_cloud
from dbfixtures import in_ci

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "moves"))


def _missing() -> str | None:
    """What this machine lacks for the distributed layout, or None."""
    if os.geteuid() != 0 or shutil.which("ip") is None:
        return "network namespaces need root and iproute2"
    if shutil.which("rabbitmqctl") is None:
        return "rabbitmqctl is not installed"
    probe = subprocess.run(["rabbitmqctl", "-q", "status"], capture_output=True, timeout=60)
    if probe.returncode != 0:
        return "RabbitMQ does not answer"
    import dbfixtures
    for backend in dbfixtures.SERVER_BACKENDS:
        reason = dbfixtures.unreachable_reason(backend)
        if reason:
            return reason
    return None


@pytest.fixture(scope="session")
def ncloud(tmp_path_factory) -> CloudProcess:
    reason = _missing()
    if reason:
        if in_ci():
            pytest.fail(f"the distributed layout cannot run here: {reason}")
        pytest.skip(reason)
    from disthelpers import LEASE
    state_dir = str(tmp_path_factory.mktemp("netns-cloud"))
    # a short lease, so that a move whose conductor was killed or frozen is taken over
    # within seconds; every service process gets the operator's sections
    with open(os.path.join(state_dir, "transcell.conf"), "w") as fh:
        fh.write(f"[conductor]\nmove_lease_seconds = {LEASE}\nmove_check_interval = 2\n")
    proc = start_cloud(state_dir, ("--cells", "2", "--hosts-per-cell", "1"),
                       layout="distributed-netns")
    cloud = CloudProcess(state_dir, proc.port)
    cloud.proc = proc  # type: ignore[attr-defined]
    yield cloud
    stop_cloud(proc)
