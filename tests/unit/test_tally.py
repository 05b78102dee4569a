"""The opt-in tally: counters reach the directory from a real process; nothing without it.

The variable is read once at import, so each case runs a fresh interpreter.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

from transcell import tally

# A process that sends two calls and a cast on the in-process bus and runs SQL on a
# SQLite database through transcell's own engines, then reports what it knows.
WORKLOAD = textwrap.dedent("""
    import json, os, threading
    from sqlalchemy import text
    from transcell import tally
    from transcell.context import RequestContext
    from transcell.db import session
    from transcell.rpc.inproc import InprocBus

    class Echo:
        def ping(self, ctx, value):
            return value

    bus = InprocBus("inproc://tally-test")
    bus.serve("echo", Echo())
    ctx = RequestContext(user_id="u", project_id="p")
    assert bus.call(ctx, "echo", "ping", value=1) == 1
    assert bus.call(ctx, "echo", "ping", value=2) == 2
    bus.cast(ctx, "echo", "ping", value=3)
    with session.session_for("sqlite:///" + os.environ["TALLY_TEST_DB"]) as s:
        s.execute(text("SELECT 1"))
        s.execute(text("SELECT 2"))
    bus.stop()
    print(json.dumps({"enabled": tally.ENABLED,
                      "threads": sorted(t.name for t in threading.enumerate())}))
""")


def run_workload(tmp_path, tally_dir: str | None) -> dict:
    env = {k: v for k, v in os.environ.items() if k != tally.ENV}
    if tally_dir is not None:
        env[tally.ENV] = tally_dir
    env["TALLY_TEST_DB"] = str(tmp_path / "cell1.sqlite")
    out = subprocess.run([sys.executable, "-c", WORKLOAD, "compute", "--host", "h1"],
                         env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_counters_are_written_to_the_directory(tmp_path):
    tally_dir = tmp_path / "tally"
    seen = run_workload(tmp_path, str(tally_dir))
    assert seen["enabled"] is True
    assert "tally" in seen["threads"]
    files = [f for f in os.listdir(tally_dir) if f.endswith(".json")]
    assert len(files) == 1, files
    # named after the command and its host, and the pid, so processes never collide
    assert files[0].startswith("compute-h1-")
    data = json.loads((tally_dir / files[0]).read_text())
    assert data["messages"] == {"call echo.ping": 2, "cast echo.ping": 1}
    cell = data["databases"]["cell1"]
    assert cell["statements"] >= 2
    assert cell["verb SELECT"] >= 2
    assert cell["commits"] == 1
    total = tally.read_totals(str(tally_dir))
    assert total["processes"] == 1
    assert sum(total["messages"].values()) == 3


def test_nothing_happens_when_the_variable_is_unset(tmp_path):
    seen = run_workload(tmp_path, None)
    assert seen["enabled"] is False
    assert "tally" not in seen["threads"]
    assert not (tmp_path / "tally").exists()


def test_difference_is_what_happened_between_two_readings():
    before = tally.totals([{"messages": {"call a.b": 2},
                            "databases": {"api": {"statements": 5, "commits": 1}}}])
    after = tally.totals([
        {"messages": {"call a.b": 3, "cast c.d": 1},
         "databases": {"api": {"statements": 9, "commits": 1}}},
        {"messages": {}, "databases": {"cell2": {"statements": 4}}}])
    delta = tally.difference(after, before)
    assert delta["messages"] == {"call a.b": 1, "cast c.d": 1}
    assert delta["databases"]["api"] == {"statements": 4}
    assert delta["databases"]["cell2"] == {"statements": 4}


def test_labels_are_roles_in_both_deployments():
    assert tally.database_label("sqlite:////var/state/cell1.sqlite") == "cell1"
    assert tally.database_label(
        "postgresql+psycopg2://tc0a1b2c3d_api:secret@127.0.0.1:5432/tc0a1b2c3d_api") == "api"
    assert tally.database_label(
        "mysql+pymysql://u:secret@127.0.0.1/tc0a1b2c3d_cell1?charset=utf8") == "cell1"
    assert tally.process_name(["main.py", "conductor", "--cell", "cell2"]) == \
        "conductor-cell2"
    assert tally.process_name(["main.py", "up", "--state-dir", "/x"]) == "up"


def test_requests_are_counted_by_the_shape_of_their_path(monkeypatch):
    monkeypatch.setattr(tally, "_messages", tally.Counter())
    tally.request("placement", "PUT", "/allocations/6c1b9f0e-8a0e-4a52-9d55-6e0f5a1d2c3b")
    tally.request("placement", "PUT", "/allocations/0d3c1e2f-aaaa-4bbb-8ccc-1234567890ab")
    tally.request("network", "GET", "/v2.0/ports?device_id=x")
    assert tally.snapshot()["messages"] == {"request placement.PUT /allocations/{id}": 2,
                                            "request network.GET /v2.0/ports": 1}
