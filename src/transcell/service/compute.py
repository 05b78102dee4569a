"""A compute host as its own process: one host, one cell, nothing global but HTTP."""

from __future__ import annotations

from transcell import bootstrap
from transcell.rpc.bus import get_bus
from transcell.service import common


def run_compute(host: str) -> int:
    from transcell.compute.manager import ComputeManager
    from transcell.compute.rpcapi import topic_for
    from transcell.compute.virt.fake import FakeDriver

    cell = common.own_cell()
    common.use_remote_services()
    driver = FakeDriver.for_host(host)
    manager = ComputeManager(host, cell, driver, bootstrap.cell_traits(cell.name))
    manager.init_host()
    bus = get_bus(cell.transport_url)
    bus.serve(topic_for(host), manager, server=host)
    manager.start_periodic()

    def stop() -> None:
        bus.unserve(topic_for(host))
        manager.stop()

    return common.run_until_signalled(f"compute {host}", stop)
