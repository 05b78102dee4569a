"""The global services this process reaches: image store, network, Placement.

Set up once at start-up (embedded: in-process objects; distributed: HTTP or
RPC clients), so services never import each other's internals.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class Registry:
    image: Any = None       # transcell.image.client.ImageClient
    network: Any = None     # transcell.network.rpcapi.NetworkAPI
    placement: Any = None   # transcell.placement.client.PlacementClient
    volume: Any = None      # transcell.volume.client.VolumeClient (in-process or HTTP)


services = Registry()
