"""The flavors every new cloud starts with.

``m1.*`` fit anywhere; ``gen1.*`` and ``gen2.*`` require a hardware generation
trait, and each cell of the embedded cloud is one generation, so resizing
from a gen1 to a gen2 flavor is what moves a server to another cell.
"""

from __future__ import annotations

from sqlalchemy import select

from transcell.db import api_models as am
from transcell.db.session import api_session

GEN1 = {"trait:CUSTOM_HW_GEN1": "required"}
GEN2 = {"trait:CUSTOM_HW_GEN2": "required"}

#: (flavorid, name, vcpus, memory_mb, root_gb, extra_specs)
DEFAULT_FLAVORS: tuple[tuple[str, str, int, int, int, dict[str, str]], ...] = (
    ("1", "m1.tiny", 1, 512, 1, {}),
    ("2", "m1.small", 1, 2048, 20, {}),
    ("11", "gen1.small", 1, 1024, 5, GEN1),
    ("12", "gen1.medium", 2, 2048, 10, GEN1),
    ("21", "gen2.small", 1, 1024, 5, GEN2),
    ("22", "gen2.medium", 2, 4096, 10, GEN2),
)


def ensure_default_flavors() -> list[str]:
    """Create whichever default flavors are missing (by id or name); return their ids.

    A flavor an operator changed or deleted-and-recreated under the same id or
    name is left as it is: a restart never overwrites an operator's choice.
    """
    created = []
    with api_session() as s:
        taken_ids = set(s.scalars(select(am.Flavor.flavorid)))
        taken_names = set(s.scalars(select(am.Flavor.name)))
        for flavorid, name, vcpus, memory_mb, root_gb, specs in DEFAULT_FLAVORS:
            if flavorid in taken_ids or name in taken_names:
                continue
            flavor = am.Flavor(flavorid=flavorid, name=name, vcpus=vcpus, memory_mb=memory_mb,
                               root_gb=root_gb, ephemeral_gb=0, swap=0, rxtx_factor=1.0,
                               is_public=True, disabled=False)
            flavor.extra_specs = [am.FlavorExtraSpec(key=k, value=v) for k, v in specs.items()]
            s.add(flavor)
            created.append(flavorid)
    return created
