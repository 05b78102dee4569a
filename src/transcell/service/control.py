"""The control services: scheduler, super-conductor and cell conductor processes."""

from __future__ import annotations

import logging

from transcell import cell as cells
from transcell.conf import CONF
from transcell.rpc.bus import get_bus
from transcell.service import common

LOG = logging.getLogger(__name__)


def run_scheduler() -> int:
    from transcell.scheduler.manager import SchedulerManager
    common.use_remote_placement()
    row = common.ServiceRow(cells.cell0(), "nova-scheduler", CONF.host)
    row.start()
    bus = get_bus(CONF.rpc.transport_url)
    bus.serve("scheduler", SchedulerManager(), server=CONF.host)

    def stop() -> None:
        bus.unserve("scheduler")
        row.stop()

    return common.run_until_signalled("scheduler", stop)


def run_conductor() -> int:
    """The super-conductor: builds and moves. Several may run at once; a move is
    owned through its saga's lease, never through which process took the message."""
    from transcell.conductor.manager import ConductorManager
    common.use_remote_services()
    row = common.ServiceRow(cells.cell0(), "nova-conductor", CONF.host)
    row.start()
    manager = ConductorManager()
    bus = get_bus(CONF.rpc.transport_url)
    bus.serve("conductor", manager, server=CONF.host)
    manager.moves.start_periodic()
    from transcell.drain.runner import DrainRunner
    drains = DrainRunner()
    drains.start_periodic()

    def stop() -> None:
        bus.unserve("conductor")
        manager.moves.stop()
        drains.stop()
        row.stop()

    return common.run_until_signalled("conductor", stop)


def run_cell_conductor(cell_name: str) -> int:
    """A cell's conductor: the only thing its compute hosts may call."""
    from transcell.conductor.cell import TOPIC, CellConductorManager
    cell = common.own_cell()
    if cell.name != cell_name:
        raise SystemExit(f"--cell {cell_name} does not match [cell] name {cell.name}")
    common.use_remote_placement()
    bus = get_bus(cell.transport_url)
    bus.serve(TOPIC, CellConductorManager(cell), server=f"conductor-{cell.name}")

    def stop() -> None:
        bus.unserve(TOPIC)

    return common.run_until_signalled(f"conductor --cell {cell_name}", stop)
