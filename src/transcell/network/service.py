"""The network service: one object answering both the Neutron API and compute.

Every method takes the caller's RequestContext first and returns plain JSON
values, so the same object serves the HTTP API in-process and compute hosts
over RPC. Its database is its own; ``transcell.db.migration.sync(url,
"network")`` creates it.
"""

from __future__ import annotations

from transcell.network.bindings import Bindings
from transcell.network.bulk import BulkCreate
from transcell.network.cells import APICells, CellDirectory
from transcell.network.defaults import RoutedDefault
from transcell.network.instances import InstanceNetworking
from transcell.network.moves import PortMoves
from transcell.network.networks import Networks, Subnets
from transcell.network.ports import Ports
from transcell.network.routers import Routers
from transcell.network.security_groups import SecurityGroups
from transcell.network.segments import Segments
from transcell.network.subnetpools import SubnetPools
from transcell.network.tags import Tags


class NetworkService(Networks, Subnets, Segments, Ports, Bindings, SecurityGroups, Tags,
                     Routers, SubnetPools, InstanceNetworking, RoutedDefault, PortMoves,
                     BulkCreate):
    """Networks, subnets, ports, bindings, security groups, routers and subnet pools
    of one database.

    The parts live in modules named after what they own (``networks``,
    ``ports``, ``bindings``, ``instances``...); this class only joins them.
    """

    RPC_API_VERSION = "1.1"  # messages of major 1 up to this minor are accepted

    def __init__(self, db_url: str, cells: CellDirectory | None = None):
        self.db_url = db_url
        #: where hosts are, for segments: the API database unless told otherwise
        self.cells: CellDirectory = cells or APICells()
