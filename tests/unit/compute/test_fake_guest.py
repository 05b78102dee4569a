"""The fake driver's guest as users act on it where it runs, and the console tail."""

from __future__ import annotations

import pytest

from transcell import exception
from transcell.compute.power_ops import tail
from transcell.compute.virt import power_state
from transcell.compute.virt.fake import FakeDriver

UUID = "0c5cba2e-4a7f-4a5a-9f0e-6f1d2b3c4d5e"


@pytest.fixture
def driver(tmp_path) -> FakeDriver:
    fake = FakeDriver("host-a", str(tmp_path / "instances"), str(tmp_path / "cache"),
                      disk_format="raw")
    fake.spawn({"uuid": UUID, "display_name": "guest", "vcpus": 2, "memory_mb": 256}, {},
               lambda image_id, dest: None, 1)
    return fake


def test_a_boot_writes_the_console_up_to_the_login_prompt(driver):
    log = driver.get_console_output(UUID)
    assert log.count("--- boot ---") == 1
    assert log.rstrip("\n").endswith("guest login:")
    assert len(log.split("\n")) > 10


def test_pause_and_suspend_move_the_power_state_and_refuse_the_wrong_start(driver):
    driver.pause(UUID)
    driver.pause(UUID)  # already there: fine
    assert driver.get_power_state(UUID) == power_state.PAUSED
    with pytest.raises(exception.InstanceInvalidState):
        driver.suspend(UUID)
    with pytest.raises(exception.InstanceInvalidState):
        driver.resume(UUID)
    driver.unpause(UUID)
    driver.suspend(UUID)
    assert driver.get_power_state(UUID) == power_state.SUSPENDED
    with pytest.raises(exception.InstanceInvalidState):
        driver.reboot(UUID, "SOFT")
    driver.reboot(UUID, "HARD")
    assert driver.get_power_state(UUID) == power_state.RUNNING
    log = driver.get_console_output(UUID)
    assert log.index("guest paused") < log.index("PM: suspending") < log.index("hard reboot")


def test_password_needs_a_running_guest_and_is_kept_only_as_a_digest(driver, tmp_path):
    driver.set_admin_password(UUID, "s3cret")
    assert driver.admin_password_matches(UUID, "s3cret")
    guest_file = (tmp_path / "instances" / UUID / "guest.json").read_text()
    assert "s3cret" not in guest_file
    driver.power_off(UUID)
    with pytest.raises(exception.InstancePasswordSetFailed):
        driver.set_admin_password(UUID, "other")
    assert driver.admin_password_matches(UUID, "s3cret")


def test_rescue_fetches_its_image_and_unrescue_boots_the_own_disk(driver):
    fetched = []

    def fetch(image_id, dest):
        fetched.append(image_id)
        with open(dest, "wb") as fh:
            fh.write(b"\0" * 4096)

    image = {"id": "rescue-image", "disk_format": "raw", "size": 4096}
    driver.rescue(UUID, image, fetch, "pw")
    assert driver.is_rescued(UUID) and fetched == ["rescue-image"]
    driver.unrescue(UUID)
    assert not driver.is_rescued(UUID)
    assert driver.get_power_state(UUID) == power_state.RUNNING


def test_diagnostics_shape(driver):
    diag = driver.get_instance_diagnostics(UUID)
    assert diag["state"] == "running" and diag["num_cpus"] == 2
    assert [c["id"] for c in diag["cpu_details"]] == [0, 1]
    assert diag["memory_details"] == {"maximum": 256, "used": 256}
    assert diag["num_disks"] == len(diag["disk_details"]) == 1
    driver.power_off(UUID)
    assert driver.get_instance_diagnostics(UUID)["uptime"] == 0


@pytest.mark.parametrize("length,expected", [(None, "a\nb\nc\n"), (2, "c\n"), (3, "b\nc\n"),
                                             (0, ""), (10, "a\nb\nc\n")])
def test_tail_counts_lines_as_nova_does(length, expected):
    assert tail("a\nb\nc\n", length) == expected


def test_a_missing_guest_is_not_found(driver):
    with pytest.raises(exception.InstanceNotFound):
        driver.get_console_output("0c5cba2e-0000-4a5a-9f0e-6f1d2b3c4d5e")
