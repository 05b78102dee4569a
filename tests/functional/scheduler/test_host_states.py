"""What the scheduler reads of each host: whether its compute service is up and enabled.

``all_host_states`` selects only the columns it needs; these pin that every
way a host can be unfit still shows (forced down, a stale heartbeat, disabled,
no compute service) and that deleted rows are not read at all.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import update

from transcell.conf import CONF
from transcell.db import cell_models as cm
from transcell.db.session import cell_session
from transcell.db.types import utcnow
from transcell.scheduler.host_state import all_host_states


def _services(cloud, cell: str, host: str, **values) -> None:
    with cell_session(cloud.cells[cell]) as s:
        s.execute(update(cm.Service).where(cm.Service.host == host).values(**values))


def test_host_states_show_each_unfit_service(sched_cloud) -> None:
    for host in ("up", "forced", "stale", "disabled", "orphan", "gone"):
        sched_cloud.add_host("cell1", host, up=host != "forced")
    sched_cloud.add_host("cell2", "other")
    stale = utcnow() - dt.timedelta(seconds=CONF.compute.service_down_time + 30)
    _services(sched_cloud, "cell1", "stale", last_seen_up=stale, updated_at=None)
    _services(sched_cloud, "cell1", "disabled", disabled=True)
    _services(sched_cloud, "cell1", "orphan", binary="nova-conductor")  # not a compute
    with cell_session(sched_cloud.cells["cell1"]) as s:
        s.execute(update(cm.ComputeNode).where(cm.ComputeNode.host == "gone")
                  .values(deleted=1))

    states = {s.host: s for s in all_host_states().values()}

    assert {h: (s.service_up, s.service_disabled) for h, s in states.items()} == {
        "up": (True, False), "forced": (False, False), "stale": (False, False),
        "disabled": (True, True), "orphan": (False, True), "other": (True, False)}
    assert states["up"].uuid == sched_cloud.providers["up"]
    assert (states["other"].cell.name, states["other"].nodename) == ("cell2", "other")
