"""The Placement client against the real openstack-placement app, in-process."""

from __future__ import annotations

import sqlite3
import threading
import uuid

import pytest
from sqlalchemy.engine import make_url

from transcell import exception
from transcell.placement import embedded

PROJECT, USER = "proj-1", "user-1"
FLAVOR = {"VCPU": 2, "MEMORY_MB": 1024, "DISK_GB": 10}


def _uuid() -> str:
    return str(uuid.uuid4())


def test_load_app_is_once_per_process(placement_app):
    url = embedded.loaded_url()
    assert embedded.load_app(url) is placement_app
    with pytest.raises(embedded.PlacementAlreadyLoaded, match="already loaded"):
        embedded.load_app("sqlite:////nonexistent/other.sqlite")


def test_sqlite_database_runs_in_wal_mode(placement_app):
    path = make_url(embedded.loaded_url()).database
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_providers_are_set_up_idempotently(placement, cells, inventory):
    cell1, cell2 = cells
    again = placement.ensure_resource_provider(cell1.uuid, cell1.name)
    assert again["uuid"] == cell1.uuid and again["name"] == cell1.name
    renamed = placement.ensure_resource_provider(cell1.uuid, cell1.name + "-renamed")
    assert renamed["name"] == cell1.name + "-renamed"
    generation = placement.get_provider(cell2.uuid)["generation"]
    placement.set_inventory(cell2.uuid, inventory)        # unchanged: no write
    placement.set_traits(cell2.uuid, [cell2.trait])
    placement.set_aggregates(cell2.uuid, [cell2.aggregate])
    assert placement.get_provider(cell2.uuid)["generation"] == generation

    assert placement.get_traits(cell2.uuid) == ["CUSTOM_HW_GEN2"]
    assert placement.get_aggregates(cell2.uuid) == [cell2.aggregate]
    assert placement.get_inventories(cell2.uuid)["VCPU"]["total"] == 8
    in_cell1 = placement.list_providers(member_of=[cell1.aggregate])
    assert [p["uuid"] for p in in_cell1] == [cell1.uuid]
    assert placement.get_provider(_uuid()) is None
    with pytest.raises(exception.ResourceProviderNotFound):
        placement.set_inventory(_uuid(), inventory)


def test_allocation_candidates_honour_traits_and_member_of(placement, cells):
    cell1, cell2 = cells
    both = [[cell1.aggregate, cell2.aggregate]]
    requests, summaries = placement.get_allocation_candidates(FLAVOR, member_of=both)
    assert {rp for r in requests for rp in r["allocations"]} == {cell1.uuid, cell2.uuid}
    assert set(summaries) == {cell1.uuid, cell2.uuid}

    requests, _ = placement.get_allocation_candidates(
        FLAVOR, required_traits=["CUSTOM_HW_GEN2"], member_of=both)
    assert [list(r["allocations"]) for r in requests] == [[cell2.uuid]]
    assert requests[0]["allocations"][cell2.uuid]["resources"] == FLAVOR

    requests, _ = placement.get_allocation_candidates(
        FLAVOR, forbidden_traits=["CUSTOM_HW_GEN2"], member_of=both)
    assert [list(r["allocations"]) for r in requests] == [[cell1.uuid]]

    requests, _ = placement.get_allocation_candidates(FLAVOR, member_of=[[cell1.aggregate]])
    assert [list(r["allocations"]) for r in requests] == [[cell1.uuid]]

    # Both constraints must hold: cell1's aggregate and GEN2 exclude each other.
    requests, _ = placement.get_allocation_candidates(
        FLAVOR, required_traits=["CUSTOM_HW_GEN2"], member_of=[[cell1.aggregate]])
    assert requests == []

    requests, _ = placement.get_allocation_candidates(
        FLAVOR, in_tree=cell2.uuid, required_traits=["CUSTOM_NOBODY_HAS_THIS"])
    assert requests == []


def test_claim_then_usages_and_over_capacity(placement, cells):
    cell1, _ = cells
    instance = _uuid()
    allocs = {cell1.uuid: {"resources": FLAVOR}}
    assert placement.claim(instance, allocs, PROJECT, USER) is True
    assert placement.claim(instance, allocs, PROJECT, USER) is True   # a retried step
    assert placement.get_usages(cell1.uuid) == {"VCPU": 2, "MEMORY_MB": 1024, "DISK_GB": 10}
    got = placement.get_allocations(instance)
    assert got["allocations"][cell1.uuid]["resources"] == FLAVOR
    assert got["consumer_generation"] == 1 and got["consumer_type"] == "INSTANCE"
    assert placement.get_provider_allocations(cell1.uuid) == {instance: FLAVOR}

    too_big = {cell1.uuid: {"resources": {"VCPU": 7}}}
    assert placement.claim(_uuid(), too_big, PROJECT, USER) is False
    assert placement.get_usages(cell1.uuid)["VCPU"] == 2


def test_move_to_migration_and_revert_replaces_target_claim(placement, cells):
    cell1, cell2 = cells
    instance, migration = _uuid(), _uuid()
    assert placement.claim(instance, {cell1.uuid: {"resources": FLAVOR}}, PROJECT, USER)

    # Resize: the source allocation moves to the migration consumer...
    assert placement.move_allocations(instance, migration) is True
    held = placement.get_allocations(migration)
    assert held["allocations"][cell1.uuid]["resources"] == FLAVOR
    assert held["consumer_type"] == "MIGRATION" and held["project_id"] == PROJECT
    assert placement.get_allocations(instance)["consumer_generation"] is None
    # ...and the instance claims the target in the other cell.
    bigger = {"VCPU": 4, "MEMORY_MB": 2048, "DISK_GB": 20}
    assert placement.claim(instance, {cell2.uuid: {"resources": bigger}}, PROJECT, USER)
    assert placement.get_usages(cell1.uuid)["VCPU"] == 2
    assert placement.get_usages(cell2.uuid)["VCPU"] == 4
    everything = placement.list_all_allocations_by_consumer()
    assert everything[migration] == {cell1.uuid: FLAVOR}
    assert everything[instance] == {cell2.uuid: bigger}

    # Revert: the migration's allocation moves back, replacing the target claim.
    assert placement.move_allocations(migration, instance, consumer_type="INSTANCE") is True
    assert placement.get_usages(cell2.uuid)["VCPU"] == 0
    assert placement.get_usages(cell1.uuid)["VCPU"] == 2
    back = placement.get_allocations(instance)
    assert list(back["allocations"]) == [cell1.uuid]
    assert back["consumer_type"] == "INSTANCE"
    assert placement.get_allocations(migration)["allocations"] == {}
    assert placement.move_allocations(migration, instance) is False   # nothing left


def test_claim_moving_moves_and_claims_in_one_write(placement, cells, inventory):
    cell1, cell2 = cells
    instance, migration = _uuid(), _uuid()
    assert placement.claim(instance, {cell1.uuid: {"resources": FLAVOR}}, PROJECT, USER)
    bigger = {"VCPU": 4, "MEMORY_MB": 2048, "DISK_GB": 20}
    target = {cell2.uuid: {"resources": bigger}}
    assert placement.claim_moving(instance, target, PROJECT, USER, migration) is True
    everything = placement.list_all_allocations_by_consumer()
    assert everything[migration] == {cell1.uuid: FLAVOR}
    assert everything[instance] == {cell2.uuid: bigger}
    held = placement.get_allocations(migration)
    assert held["consumer_type"] == "MIGRATION" and held["project_id"] == PROJECT
    assert placement.get_allocations(instance)["consumer_type"] == "INSTANCE"

    # a retry (the migration holds the source already) claims the target alone
    smaller = {cell2.uuid: {"resources": FLAVOR}}
    assert placement.claim_moving(instance, smaller, PROJECT, USER, migration) is True
    everything = placement.list_all_allocations_by_consumer()
    assert everything[migration] == {cell1.uuid: FLAVOR}
    assert everything[instance] == {cell2.uuid: FLAVOR}

    # a target without room changes nothing
    other, other_migration = _uuid(), _uuid()
    assert placement.claim(other, {cell1.uuid: {"resources": FLAVOR}}, PROJECT, USER)
    huge = {cell2.uuid: {"resources": {"VCPU": inventory["VCPU"]["total"] + 1,
                                       "MEMORY_MB": 512, "DISK_GB": 1}}}
    assert placement.claim_moving(other, huge, PROJECT, USER, other_migration) is False
    assert placement.get_allocations(other_migration)["allocations"] == {}
    assert placement.list_all_allocations_by_consumer()[other] == {cell1.uuid: FLAVOR}


def test_delete_allocations_is_idempotent(placement, cells):
    cell1, _ = cells
    instance = _uuid()
    assert placement.claim(instance, {cell1.uuid: {"resources": FLAVOR}}, PROJECT, USER)
    placement.delete_allocations(instance)
    placement.delete_allocations(instance)
    assert placement.get_usages(cell1.uuid)["VCPU"] == 0
    assert placement.get_allocations(instance)["allocations"] == {}


def test_replace_allocations_checks_the_generation(placement, cells):
    cell1, _ = cells
    instance = _uuid()
    assert placement.claim(instance, {cell1.uuid: {"resources": FLAVOR}}, PROJECT, USER)
    smaller = {cell1.uuid: {"resources": {"VCPU": 1, "MEMORY_MB": 512, "DISK_GB": 10}}}
    with pytest.raises(exception.AllocationConflict):
        placement.replace_allocations(instance, smaller, PROJECT, USER, "INSTANCE",
                                      consumer_generation=None)
    assert placement.replace_allocations(instance, smaller, PROJECT, USER, "INSTANCE",
                                         consumer_generation=1)
    assert placement.get_usages(cell1.uuid)["VCPU"] == 1
    assert placement.replace_allocations(instance, {}, PROJECT, USER, "INSTANCE")
    assert placement.get_usages(cell1.uuid)["VCPU"] == 0


def test_concurrent_claims_never_overcommit(placement, cells):
    cell1, _ = cells
    results: list[bool] = []
    errors: list[BaseException] = []

    def claim_one() -> None:
        try:
            results.append(placement.claim(
                _uuid(), {cell1.uuid: {"resources": {"VCPU": 3}}}, PROJECT, USER))
        except BaseException as exc:  # surfaced by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=claim_one) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(results) == [False] * 4 + [True] * 2
    assert placement.get_usages(cell1.uuid)["VCPU"] == 6


def test_delete_provider(placement):
    rp = _uuid()
    placement.ensure_resource_provider(rp, f"doomed-{rp[:8]}")
    placement.delete_provider(rp)
    placement.delete_provider(rp)
    assert placement.get_provider(rp) is None
