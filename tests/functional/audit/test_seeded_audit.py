"""``transcell dev seed`` loads a consistent cloud: ``transcell audit`` finds nothing.

3 cells, 30 hosts and 3,000 servers are loaded in a subprocess (Placement's
database layer is one per process), audited clean, then one allocation is
removed behind the loader's back and the audit must say so, which shows it
read what the loader wrote.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys

from sqlalchemy import create_engine, func, select

from transcell.db import api_models as am
from transcell.db import cell_models as cm


def _transcell(state_dir, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "transcell.cli.main", "--state-dir",
                           str(state_dir), *args], capture_output=True, text=True,
                          timeout=600)


def _count(url: str, column) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as db:
            return db.scalar(select(func.count(column)))
    finally:
        engine.dispose()


def test_a_seeded_cloud_audits_clean(tmp_path):
    seeded = _transcell(tmp_path, "dev", "seed", "--cells", "3", "--hosts", "30",
                        "--servers", "3000", "--projects", "4")
    assert seeded.returncode == 0, seeded.stderr
    api = f"sqlite:///{tmp_path / 'api.sqlite'}"
    assert _count(api, am.InstanceMapping.id) == 3000
    assert _count(api, am.HostMapping.id) == 30
    per_cell = [_count(f"sqlite:///{tmp_path / f'cell{n}.sqlite'}", cm.Instance.id)
                for n in (1, 2, 3)]
    assert per_cell == [1000, 1000, 1000]
    audit = _transcell(tmp_path, "audit", "--json")
    assert audit.returncode == 0, audit.stdout + audit.stderr
    assert json.loads(audit.stdout)["problems"] == []

    with sqlite3.connect(tmp_path / "placement.sqlite") as db:
        consumer = db.execute("SELECT consumer_id FROM allocations LIMIT 1").fetchone()[0]
        db.execute("DELETE FROM allocations WHERE consumer_id = ?", (consumer,))
    audit = _transcell(tmp_path, "audit", "--json")
    assert audit.returncode == 1
    assert [p["kind"] for p in json.loads(audit.stdout)["problems"]] == ["missing-allocation"]
