"""The volume service: one object answering both the Cinder API and compute.

Every method takes the caller's RequestContext first and returns plain JSON
values (Cinder's bodies), so the same object serves the HTTP API in-process
and, through ``transcell.volume.client``, compute hosts and conductors. Its
database is its own; ``transcell.db.migration.sync(url, "volume")`` creates it.
"""

from __future__ import annotations

from transcell.volume.legacy import LegacyAttach
from transcell.volume.moves import Moves
from transcell.volume.recovery import Recovery
from transcell.volume.snapshots import Snapshots
from transcell.volume.volumes import Volumes


class VolumeService(Volumes, Snapshots, LegacyAttach, Moves, Recovery):
    """Volumes, attachments and migrations of one database.

    The parts live in modules named after what they own; this class only joins them.
    """

    def __init__(self, db_url: str):
        self.db_url = db_url
