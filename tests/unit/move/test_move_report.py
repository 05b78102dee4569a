"""The downtime line a move's finish event carries: what the operator reads in the
server's actions, so its figures must be the saga's own."""

from __future__ import annotations

from transcell.move import report

MiB = 1024 * 1024


def test_a_precopied_move_says_how_long_the_guest_was_down_and_what_went_when():
    res = {"stopped_at": 100.0, "bytes_uploaded": 8 * MiB,
           "precopy_rounds": [{"bytes_sent": 512 * MiB}, {"bytes_sent": 28 * MiB}]}
    assert report.downtime_summary(res, {"running_at": 100.137}) == (
        "guest down 0.14 s; root disk: 8.0 MiB sent after the stop, 540.0 MiB while "
        "running (2 pre-copy rounds)")


def test_one_round_is_singular_and_no_precopy_says_only_what_went_after_the_stop():
    one = {"stopped_at": 5.0, "bytes_uploaded": 0, "precopy_rounds": [{"bytes_sent": MiB}]}
    assert report.downtime_summary(one, {"running_at": 6.5}).endswith(
        "1.0 MiB while running (1 pre-copy round)")
    stopped_whole = {"stopped_at": 5.0, "bytes_uploaded": 3 * MiB}
    assert report.downtime_summary(stopped_whole, {"running_at": 7.0}) == (
        "guest down 2.00 s; root disk: 3.0 MiB sent after the stop")


def test_a_guest_that_was_not_running_has_no_downtime_to_report():
    assert report.downtime_summary({"bytes_uploaded": None}, {"running_at": None}) == (
        "guest not running during the move; root disk: 0.0 MiB sent after the stop")
    # a stopped server's host records its "stop" too; it lost nothing by it
    off = {"power_on": False, "stopped_at": 5.0, "bytes_uploaded": MiB}
    assert report.downtime_summary(off, {"running_at": 9.0}).startswith(
        "guest not running during the move;")


def test_the_finish_event_and_the_record_show_one_downtime_however_it_rounds():
    """Both are read from one rounding: formatting the raw difference to two places while
    the record kept three once made the event say 0.03 s and the record 0.035 (0.04)."""
    res = {"stopped_at": 1000.0, "running_at": 1000.0349996, "bytes_uploaded": 0}
    recorded = report.downtime_seconds(res)
    assert recorded == 0.035
    line = report.downtime_summary(res, {"running_at": res["running_at"]})
    assert line.startswith(f"guest down {recorded:.2f} s;"), line
    assert report.downtime_seconds({"stopped_at": 5.0}) is None
