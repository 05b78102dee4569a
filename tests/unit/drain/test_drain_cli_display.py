"""``transcell drain``'s screen and report for a drain of many servers."""

from __future__ import annotations

from transcell.cli import drain as cli


def server(n: int, state: str, dest: str | None = None) -> dict:
    return {"id": f"id-{n}", "name": f"s{n}", "state": state, "attempts": 1,
            "source_host": "cell1-host1", "dest_host": dest,
            "target_cell": "cell2" if dest else None, "bytes": 1024 * 1024,
            "downtime_seconds": 0.5 + n / 1000, "error": "boom" if state == "failed" else None}


def drain_of(servers: list[dict], status: str = "running") -> dict:
    moved = sum(1 for s in servers if s["state"] == "moved")
    failed = sum(1 for s in servers if s["state"] == "failed")
    return {"id": "d1", "cell": "cell1", "status": status, "servers": servers,
            "progress": {"total": len(servers), "moved": moved, "failed": failed,
                         "bytes_moved": moved * 1024 * 1024, "eta_seconds": 5.0,
                         "elapsed_seconds": 10.0}}


def test_screen_shows_running_and_failed_moves_only_and_fits():
    servers = ([server(n, "moved", "cell2-host1") for n in range(900)]
               + [server(n, "moving") for n in range(900, 964)]
               + [server(n, "pending") for n in range(964, 999)] + [server(999, "failed")])
    lines = cli.screen(drain_of(servers), rows=20)
    assert len(lines) == 20
    assert lines[-1].startswith("[") and "901/1000" in lines[-1]
    assert "... and 47 more running or failed" in lines[-2]
    assert not any(" moved " in line or "pending" in line for line in lines[:-1])
    few = cli.screen(drain_of(servers[:905] + [servers[999]]), rows=20)
    assert len(few) == 7 and "s999" in few[-2]


def test_report_names_each_of_a_few_moved_servers():
    servers = [server(n, "moved", "cell2-host1") for n in range(3)] + [server(3, "failed")]
    text = cli.report(drain_of(servers, "done"))
    assert "moved  s2 (id-2) to cell2/cell2-host1" in text
    assert "FAILED s3 (id-3) after 1 attempts: boom" in text


def test_report_counts_many_moved_servers_by_target_and_names_every_failure():
    servers = ([server(n, "moved", f"cell2-host{n % 3 + 1}") for n in range(600)]
               + [server(n, "failed") for n in range(600, 603)])
    text = cli.report(drain_of(servers, "done"))
    lines = text.splitlines()
    assert len(lines) < 15
    assert "moved  600 servers" in text
    assert "to cell2/cell2-host1: 200, 200.0 MiB" in text
    assert "downtime median 0.80 s, max 1.10 s" in text
    assert sum("FAILED" in line for line in lines) == 3


def test_a_large_drain_is_read_less_often():
    assert cli.poll_interval(3) == 0.5
    assert cli.poll_interval(500) == 1.0
    assert cli.poll_interval(1000) == cli.poll_interval(100000) == 2.0
