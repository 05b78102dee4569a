"""Opt-in counters of the RPC messages a process sends and the SQL it runs, in files.

A move in a distributed cloud touches a dozen processes; what it costs in messages
and database round trips is only visible if every one of them counts. So when
``TRANSCELL_TALLY_DIR`` is set, every transcell process (the launcher hands its
environment to the services it starts) counts the calls and casts it sends, the
requests it makes of the other services' APIs (Placement, network, image), and the
statements, commits and rollbacks it runs per database, and writes its counters to
``$TRANSCELL_TALLY_DIR/<process-name>-<pid>.json`` every second and at exit. A
reader (``read_totals``) sums the files; the difference of two readings is what
happened in between, everywhere.

The variable is read once, at import: when it is unset the hooks are a test of a
module constant, and no thread, event listener or file exists.
"""

from __future__ import annotations

import atexit
import json
import os
import re
import sys
import threading
import time
from collections import Counter
from typing import Any

from transcell.lifecycle import pid_exists

ENV = "TRANSCELL_TALLY_DIR"
DIRECTORY: str | None = os.environ.get(ENV) or None
ENABLED = DIRECTORY is not None
INTERVAL = 1.0
"""Seconds between two writes of a process's file."""

_lock = threading.Lock()
_messages: Counter[str] = Counter()
_databases: dict[str, Counter[str]] = {}
_writer: threading.Thread | None = None
_path: str | None = None


# -- counting ------------------------------------------------------------------------

def message(kind: str, topic: str, method: str) -> None:
    """One RPC message sent: ``kind`` is "call" or "cast". Call only when ENABLED."""
    with _lock:
        _messages[f"{kind} {topic}.{method}"] += 1


_ID = re.compile(r"^([0-9a-fA-F-]{16,}|[0-9]+)$")


def request(service: str, method: str, path: str) -> None:
    """One request to another service's HTTP API (or, embedded, its in-process app),
    by the path's shape: ids become ``{id}``. Call only when ENABLED."""
    shape = "/".join("{id}" if _ID.match(part) else part
                     for part in path.split("?", 1)[0].split("/"))
    with _lock:
        _messages[f"request {service}.{method} {shape}"] += 1


def _bump(label: str, field: str) -> None:
    with _lock:
        counter = _databases.get(label)
        if counter is None:
            counter = _databases[label] = Counter()
        counter[field] += 1


def database_label(url: str) -> str:
    """The database's role, the same in both deployments and never its credentials.

    Embedded databases are ``STATE/<role>.sqlite``; a distributed deployment's are
    ``<prefix>_<role>`` (see deploy/layout.py), where the prefix is "tc" and 8 hex digits.
    """
    from sqlalchemy.engine import make_url
    try:
        parsed = make_url(url)
    except Exception:  # not a URL we can read: name it by its scheme only
        return url.split(":", 1)[0]
    name = os.path.basename(parsed.database or "") or parsed.drivername
    name = name.removesuffix(".sqlite")
    return re.sub(r"^tc[0-9a-f]{8}_", "", name)


def watch_engine(engine: Any, url: str) -> None:
    """Count what ``engine`` sends its database. Call only when ENABLED.

    Statements are also counted by their first word (``verb SELECT``...), which tells
    reads from writes. ``checkouts`` are the pool's hand-outs of a connection: with
    ``pool_pre_ping`` (PostgreSQL and MariaDB here) each one is also a ping, a round
    trip of its own.
    """
    from sqlalchemy import event
    label = database_label(url)

    def on_execute(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        verb = (statement.lstrip("( \n").split(None, 1) or ["?"])[0].upper()
        with _lock:
            counter = _databases.get(label)
            if counter is None:
                counter = _databases[label] = Counter()
            counter["statements"] += 1
            counter[f"verb {verb}"] += 1

    event.listen(engine, "before_cursor_execute", on_execute)
    event.listen(engine, "commit", lambda _conn: _bump(label, "commits"))
    event.listen(engine, "rollback", lambda _conn: _bump(label, "rollbacks"))
    event.listen(engine, "checkout", lambda *_args: _bump(label, "checkouts"))
    _start()


# -- writing -------------------------------------------------------------------------

def process_name(argv: list[str] | None = None) -> str:
    """``<command>[-<host or cell>]`` from the command line, e.g. ``compute-cell1-host1``."""
    argv = sys.argv if argv is None else argv
    words = argv[1:]
    command = next((w for w in words if not w.startswith("-")), None)
    name = command or os.path.basename(argv[0] if argv else "") or "python"
    for option in ("--host", "--cell"):
        if option in words[:-1]:
            name += "-" + words[words.index(option) + 1]
            break
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name) or "python"


def snapshot() -> dict[str, Any]:
    with _lock:
        return {"pid": os.getpid(), "name": process_name(), "written_at": time.time(),
                "messages": dict(_messages),
                "databases": {label: dict(c) for label, c in _databases.items()}}


def write(directory: str | None = None) -> str:
    """Write this process's counters atomically: a reader never sees half a file."""
    global _path
    directory = directory or DIRECTORY
    if directory is None:
        raise RuntimeError(f"{ENV} is not set")
    data = snapshot()
    path = os.path.join(directory, f"{data['name']}-{data['pid']}.json")
    tmp = os.path.join(directory, f".{data['name']}-{data['pid']}.json.tmp")
    os.makedirs(directory, exist_ok=True)
    with open(tmp, "w") as fh:
        json.dump(data, fh)
    os.replace(tmp, path)
    _path = path
    return path


def _write_quietly() -> None:
    try:
        write()
    except OSError:
        pass  # a benchmark that removed its directory must not break the service


def _start() -> None:
    """The writer thread, once per process (again in a forked child, whose pid differs)."""
    global _writer
    with _lock:
        if _writer is not None and _writer.is_alive():
            return

        def loop() -> None:
            while True:
                _write_quietly()
                time.sleep(INTERVAL)

        _writer = threading.Thread(target=loop, name="tally", daemon=True)
        _writer.start()


if ENABLED:
    atexit.register(_write_quietly)
    _start()


# -- reading -------------------------------------------------------------------------

def read_files(directory: str, fresh_after: float | None = None,
               timeout: float = 10.0) -> list[dict[str, Any]]:
    """Every process's last counters; with ``fresh_after`` (a ``time.time()``), wait
    until each live process has written since then, so nothing counted before that
    moment is missing. Files of processes that ended are final as they are."""
    deadline = time.monotonic() + timeout
    while True:
        found = []
        stale = []
        for entry in sorted(os.listdir(directory)):
            if entry.startswith(".") or not entry.endswith(".json"):
                continue
            try:
                with open(os.path.join(directory, entry)) as fh:
                    data = json.load(fh)
            except (OSError, ValueError):
                continue
            found.append(data)
            if fresh_after is not None and data["written_at"] < fresh_after \
                    and pid_exists(data["pid"]):
                stale.append(entry)
        if not stale or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def totals(files: list[dict[str, Any]]) -> dict[str, Any]:
    """The sum over processes: messages by "kind topic.method", databases by role."""
    messages: Counter[str] = Counter()
    databases: dict[str, Counter[str]] = {}
    for data in files:
        messages.update(data.get("messages", {}))
        for label, counts in data.get("databases", {}).items():
            databases.setdefault(label, Counter()).update(counts)
    return {"messages": messages, "databases": databases, "processes": len(files)}


def read_totals(directory: str, fresh_after: float | None = None,
                timeout: float = 10.0) -> dict[str, Any]:
    return totals(read_files(directory, fresh_after, timeout))


def difference(after: dict[str, Any], before: dict[str, Any]) -> dict[str, Any]:
    """What was counted between two readings of ``read_totals``."""
    messages = Counter(after["messages"])
    messages.subtract(before["messages"])
    databases = {}
    for label, counts in after["databases"].items():
        delta = Counter(counts)
        delta.subtract(before["databases"].get(label, {}))
        databases[label] = delta
    return {"messages": +messages, "databases": {k: +v for k, v in databases.items()},
            "processes": after["processes"]}
