"""Unmodified Tempest from PyPI against ``transcell up``: volumes, from both sides.

Tempest's block storage tests for what the volume service serves, and the
compute tests that attach volumes, boot from them and move servers that have
them (``test_resize_volume_backed_server_confirm`` and
``test_resize_server_revert_with_volume_attached`` cross cells here, since each
cell has one host). The run and its checks are the move tests' (one Tempest
run, each listed test a pytest item, a skip counting as a failure), with
``cinder`` switched on in the workspace.

Run just these: ``.venv/bin/pytest -m tempest tests/functional/tempest/test_tempest_volumes.py``.
"""

from __future__ import annotations

import pytest
import tempest_workspace as tw

#: class -> the tests of it this suite must pass. The list lives here and only here.
_LISTED: dict[str, tuple[str, ...]] = {
    "tempest.api.compute.servers.test_create_server.ServersTestBootFromVolume": (
        "test_list_servers", "test_list_servers_with_detail", "test_verify_server_details",
    ),
    "tempest.api.compute.servers.test_server_actions.ServerActionsTestOtherA": (
        "test_resize_volume_backed_server_confirm",
    ),
    "tempest.api.compute.servers.test_server_actions.ServerActionsTestOtherB": (
        "test_resize_server_revert_with_volume_attached",
    ),
    "tempest.api.compute.servers.test_servers_negative.ServersNegativeTestJSON": (
        "test_create_server_from_non_bootable_volume",
        "test_create_server_invalid_bdm_in_2nd_dict",
    ),
    "tempest.api.compute.volumes.test_attach_volume.AttachVolumeTestJSON": (
        "test_attach_detach_volume", "test_list_get_volume_attachments",
    ),
    "tempest.api.compute.volumes.test_attach_volume_negative.AttachVolumeNegativeTest": (
        "test_attach_attached_volume_to_different_server",
        "test_attach_attached_volume_to_same_server", "test_delete_attached_volume",
    ),
    "tempest.api.volume.admin.test_volume_pools.VolumePoolsAdminTestsJSON": (
        "test_get_pools_with_details", "test_get_pools_without_details",
    ),
    "tempest.api.volume.admin.test_volume_types.VolumeTypesTest": (
        "test_volume_type_list",
    ),
    "tempest.api.volume.admin.test_volume_types_negative.VolumeTypesNegativeTest": (
        "test_create_volume_type_encryption_nonexistent_type_id",
        "test_get_nonexistent_type_id",
    ),
    "tempest.api.volume.admin.test_volumes_actions.VolumesActionsTest": (
        "test_force_detach_volume", "test_volume_force_delete_when_volume_is_attaching",
        "test_volume_force_delete_when_volume_is_creating",
        "test_volume_force_delete_when_volume_is_error",
        "test_volume_force_delete_when_volume_is_maintenance", "test_volume_reset_status",
    ),
    "tempest.api.volume.admin.test_volumes_list.VolumesListAdminTestJSON": (
        "test_volume_list_param_tenant",
    ),
    "tempest.api.volume.test_availability_zone.AvailabilityZoneTestJSON": (
        "test_get_availability_zone_list",
    ),
    "tempest.api.volume.test_extensions.ExtensionsTestJSON": (
        "test_list_extensions",
    ),
    "tempest.api.volume.test_versions.VersionsTest": (
        "test_list_versions", "test_show_version",
    ),
    "tempest.api.volume.test_volume_metadata.VolumesMetadataTest": (
        "test_crud_volume_metadata", "test_update_show_volume_metadata_item",
    ),
    "tempest.api.volume.test_volumes_actions.VolumesActionsTest": (
        "test_attach_detach_volume_to_instance", "test_get_volume_attachment",
        "test_reserve_unreserve_volume", "test_volume_bootable", "test_volume_readonly_update",
        "test_volume_upload",
    ),
    "tempest.api.volume.test_volumes_clone.VolumesCloneTest": (
        "test_create_from_bootable_volume", "test_create_from_volume",
    ),
    "tempest.api.volume.test_volumes_clone_negative.VolumesCloneNegativeTest": (
        "test_create_from_volume_decreasing_size",
    ),
    "tempest.api.volume.test_volumes_extend.VolumesExtendTest": (
        "test_volume_extend",
    ),
    "tempest.api.volume.test_volumes_get.VolumesGetTest": (
        "test_volume_create_get_update_delete", "test_volume_create_get_update_delete_as_clone",
        "test_volume_create_get_update_delete_from_image",
    ),
    "tempest.api.volume.test_volumes_get.VolumesSummaryTest": (
        "test_show_volume_summary",
    ),
    "tempest.api.volume.test_volumes_list.VolumesListTestJSON": (
        "test_volume_list", "test_volume_list_by_name", "test_volume_list_details_by_name",
        "test_volume_list_details_pagination", "test_volume_list_details_with_multiple_params",
        "test_volume_list_pagination", "test_volume_list_param_display_name_and_status",
        "test_volume_list_with_detail_param_display_name_and_status",
        "test_volume_list_with_detail_param_marker",
        "test_volume_list_with_detail_param_metadata", "test_volume_list_with_details",
        "test_volume_list_with_param_metadata", "test_volumes_list_by_availability_zone",
        "test_volumes_list_by_bootable", "test_volumes_list_by_status",
        "test_volumes_list_details_by_availability_zone",
        "test_volumes_list_details_by_bootable", "test_volumes_list_details_by_status",
    ),
    "tempest.api.volume.test_volumes_negative.VolumesNegativeTest": (
        "test_attach_volumes_with_nonexistent_volume_id",
        "test_create_volume_from_image_with_decreasing_size",
        "test_create_volume_with_invalid_size",
        "test_create_volume_with_nonexistent_snapshot_id",
        "test_create_volume_with_nonexistent_source_volid",
        "test_create_volume_with_nonexistent_volume_type",
        "test_create_volume_with_size_negative", "test_create_volume_with_size_zero",
        "test_create_volume_without_passing_size", "test_delete_invalid_volume_id",
        "test_delete_volume_without_passing_volume_id",
        "test_detach_volumes_with_invalid_volume_id", "test_get_invalid_volume_id",
        "test_get_volume_without_passing_volume_id",
        "test_list_volumes_detail_with_invalid_status",
        "test_list_volumes_detail_with_nonexistent_name",
        "test_list_volumes_with_invalid_status", "test_list_volumes_with_nonexistent_name",
        "test_reserve_volume_with_negative_volume_status",
        "test_reserve_volume_with_nonexistent_volume_id",
        "test_unreserve_volume_with_nonexistent_volume_id",
        "test_update_volume_with_empty_volume_id", "test_update_volume_with_invalid_volume_id",
        "test_update_volume_with_nonexistent_volume_id",
        "test_volume_delete_nonexistent_volume_id", "test_volume_extend_with_None_size",
        "test_volume_extend_with_non_number_size",
        "test_volume_extend_with_nonexistent_volume_id",
        "test_volume_extend_with_size_smaller_than_original_size",
        "test_volume_extend_without_passing_volume_id", "test_volume_get_nonexistent_volume_id",
    ),
}

TEMPEST_TESTS: tuple[str, ...] = tuple(f"{cls}.{test}" for cls, tests in _LISTED.items()
                                       for test in tests)

#: The whole run, the cloud's start aside: about three minutes on two cores.
RUN_TIMEOUT = 900

pytestmark = [pytest.mark.tempest, pytest.mark.timeout(RUN_TIMEOUT + 120)]


@pytest.fixture(scope="module")
def tempest_run(tempest_cloud, tmp_path_factory) -> tw.TempestRun:
    workspace = str(tmp_path_factory.mktemp("tempest-volumes"))
    config_file = tw.write_workspace(tempest_cloud, workspace, TEMPEST_TESTS, volumes=True)
    return tw.run_tempest(workspace, config_file, timeout=RUN_TIMEOUT)


def test_tempest_ran_exactly_the_listed_tests(tempest_run):
    tw.check_ran_exactly(tempest_run, TEMPEST_TESTS, RUN_TIMEOUT)


@pytest.mark.parametrize("name", TEMPEST_TESTS,
                         ids=[".".join(n.rsplit(".", 2)[-2:]) for n in TEMPEST_TESTS])
def test_listed_tempest_test(tempest_run, name):
    tw.check_passed(tempest_run, name)
