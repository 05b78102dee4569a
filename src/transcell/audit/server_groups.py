"""Server groups: memberships of servers that are gone, and hard policies broken.

The scheduler keeps a group's policy at every placement; this check says whether it
still holds now that members have been built, moved across cells, shelved and
deleted: an affinity group whose settled members run on more than one host, an
anti-affinity group with more members on one host than its rules allow. A member a
move still owns is left out (it holds two hosts until the move ends). Broken
policies are reported, never repaired: which server to move is the owner's choice.
A membership whose server no longer exists is removed by ``--fix``.
"""

from __future__ import annotations

from collections import Counter

from sqlalchemy import select

from transcell.audit import Problem
from transcell.audit.state import Snapshot
from transcell.compute import server_groups as groups
from transcell.db import api_models as am
from transcell.db.session import api_session


def _stale_memberships(snap: Snapshot) -> list[Problem]:
    with api_session() as s:
        rows = s.execute(select(am.InstanceGroupMember.instance_uuid, am.InstanceGroup.uuid)
                         .join(am.InstanceGroup,
                               am.InstanceGroup.id == am.InstanceGroupMember.group_id)).all()
    problems = []
    for member, group in rows:
        mapping = snap.mappings.get(member)
        if mapping is not None and (not mapping.queued_for_delete or snap.visible(member)):
            continue  # alive, or its delete is under way (and removes the membership)

        def repair(uuid: str = member, gid: str = group) -> str:
            groups.remove_member(uuid)
            return f"removed server {uuid} from server group {gid}"

        problems.append(Problem("group-member-gone",
                                f"server group {group} lists server {member}, which no "
                                "longer exists", member, repair=repair))
    return problems


def _broken_policies(snap: Snapshot) -> list[Problem]:
    problems = []
    for group in groups.list_groups(None):
        if group.policy not in groups.HARD_POLICIES:
            continue
        hosts: Counter = Counter()
        for member in group.members:
            found = snap.mapped_row(member)
            if found is None or snap.moving(member) or not found[1].host:
                continue
            hosts[found[1].host] += 1
        if group.policy == groups.AFFINITY and len(hosts) > 1:
            problems.append(Problem(
                "group-policy-broken", f"affinity server group {group.uuid} runs its "
                f"members on {len(hosts)} hosts: {', '.join(sorted(hosts))}", group.uuid))
        crowded = sorted(h for h, n in hosts.items() if n > group.max_server_per_host)
        if group.policy == groups.ANTI_AFFINITY and crowded:
            problems.append(Problem(
                "group-policy-broken", f"anti-affinity server group {group.uuid} runs more "
                f"than {group.max_server_per_host} member(s) on {', '.join(crowded)}",
                group.uuid))
    return problems


def check(snap: Snapshot) -> list[Problem]:
    return _stale_memberships(snap) + _broken_policies(snap)
