"""Random server lifecycles through the public Compute API of a real two-cell
``transcell up``, checked after every step (hypothesis ``RuleBasedStateMachine``).

The model keeps, for each server, what a client may know: status, flavor, host, and
for a server in VERIFY_RESIZE where it came from. Each request's answer must be the
one the state rules give for the modelled state; requests sent at once must answer as
*some* serial order of them would, where work a request started may or may not have
finished before the next one arrives. After each step the cloud is left to settle
and must match the model exactly, deleted servers must be gone with their disks, no
project may exceed its instance and core quotas, and the audit must be clean.

The audit and ``instance locate`` run after each step in one long-lived process
(``movehelpers.Inspector``, the functions the commands call): the commands themselves
take seconds to import, so they run once, at the end.

Reproducible: each run has a fixed seed (the ``slow`` one, selected by ``-m slow`` or
TRANSCELL_PROPERTY_SLOW_STEPS, another than the default's), TRANSCELL_PROPERTY_SEED
picks another for either, TRANSCELL_PROPERTY_STEPS sets the default run's length. No shrinking (each
step drives a real cloud) unless TRANSCELL_PROPERTY_SHRINK=1; a failure prints the
journal of the last steps and their answers.
"""

from __future__ import annotations

import itertools
import json
import os
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace

import movehelpers as mh
import pytest
import requests
from cloudclients import CloudProcess, start_cloud, stop_cloud
from hypothesis import HealthCheck, Phase, seed, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

COMPUTE = mh.COMPUTE
ADMIN, DEMO, ALT = mh.ADMIN, mh.USER, "transcell-alt"
QUOTA_INSTANCES = 4
#: Low enough that resizes to a *.medium flavor (2 vCPUs) hit it: creates are 1 vCPU.
QUOTA_CORES = 5

#: Steps per hypothesis example; the number of examples makes up the total.
STEPS_PER_EXAMPLE = 15
DEFAULT_STEPS = int(os.environ.get("TRANSCELL_PROPERTY_STEPS", "350"))
SLOW_STEPS = int(os.environ.get("TRANSCELL_PROPERTY_SLOW_STEPS", "2000"))
#: How long the cloud may take to finish what one step started (a move is seconds).
SETTLE_TIMEOUT = 90.0
#: How long the cloud may sit still, nothing in progress, and still not match the model.
QUIET_FOR = 15.0

ACTIVE, SHUTOFF, VERIFY, ERROR, GONE = "ACTIVE", "SHUTOFF", "VERIFY_RESIZE", "ERROR", "GONE"
SETTLED = (ACTIVE, SHUTOFF, VERIFY, ERROR)


@dataclass(frozen=True)
class Flavor:
    name: str
    root_gb: int
    vcpus: int
    cells: frozenset[str]


ANY_CELL = frozenset({"cell1", "cell2"})
FLAVORS = {
    "1": Flavor("m1.tiny", 1, 1, ANY_CELL),
    "2": Flavor("m1.small", 20, 1, ANY_CELL),
    "11": Flavor("gen1.small", 5, 1, frozenset({"cell1"})),
    "12": Flavor("gen1.medium", 10, 2, frozenset({"cell1"})),
    "21": Flavor("gen2.small", 5, 1, frozenset({"cell2"})),
    "22": Flavor("gen2.medium", 10, 2, frozenset({"cell2"})),
}
FLAVOR_BY_NAME = {f.name: fid for fid, f in FLAVORS.items()}
CREATE_FLAVORS = ("1", "11", "21")
RESIZE_FLAVORS = tuple(FLAVORS)
SERVER_ACTIONS = ("resize", "migrate", "confirm", "revert", "stop", "start", "delete")
#: Which server a request is for: an index into the live ones (and the last deleted one).
INDEX = st.integers(0, 63)
INDEX_GONE = 63
#: The states each action is meant for (it is also sent to servers in others).
SUITS = {"resize": (ACTIVE, SHUTOFF), "migrate": (ACTIVE, SHUTOFF), "confirm": (VERIFY,),
         "revert": (VERIFY,), "stop": (ACTIVE,), "start": (SHUTOFF,)}


# --- the model ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Srv:
    """One server as the model knows it.

    ``busy`` names work a request started and the cloud has not finished yet
    (only while working out what racing requests may answer); ``host`` None means
    "wherever the scheduler put it" until the cloud is observed.
    """

    owner: str
    status: str
    flavor: str
    host: str | None = None
    busy: str | None = None
    target: str | None = None          # the flavor a started move goes to
    move: str | None = None            # "resize" or "migrate", while it runs / waits
    old_flavor: str | None = None
    old_status: str | None = None
    source_host: str | None = None


#: A request of the model: (server key, action, argument).
Op = tuple[str, str, str | None]
#: The answer of a delete in VERIFY_RESIZE that confirmed and has yet to delete.
CONFIRMING_FIRST = 0


def admit(kind: str, arg: str | None, s: Srv) -> tuple[int, Srv]:
    """The answer to one request on a server in state ``s``, and the state it leaves."""
    if s.status == GONE:
        return 404, s
    idle = s.busy is None
    if kind == "delete":
        if s.busy == "delete":
            return 204, s
        if idle and s.status == VERIFY:
            return CONFIRMING_FIRST, replace(s, busy="delete-confirm")
        if idle or s.busy in ("stop", "start"):
            return 204, replace(s, busy="delete")
        return 409, s
    if kind in ("resize", "migrate"):
        if not idle or s.status not in (ACTIVE, SHUTOFF):
            return 409, s
        target = arg if kind == "resize" else s.flavor
        if kind == "resize" and (target == s.flavor or
                                 FLAVORS[target].root_gb < FLAVORS[s.flavor].root_gb):
            return 400, s
        return 202, replace(s, busy="move", target=target, move=kind)
    if kind in ("confirm", "revert"):
        if not idle or s.status != VERIFY:
            return 409, s
        return (204 if kind == "confirm" else 202), replace(s, busy=kind)
    if kind in ("stop", "start"):
        if not idle or s.status != (ACTIVE if kind == "stop" else SHUTOFF):
            return 409, s
        return 202, replace(s, busy=kind)
    raise AssertionError(f"unknown action {kind}")


def delete_after_confirm(s: Srv) -> tuple[int, Srv]:
    """The second half of a delete that confirmed first: it deletes whatever the
    server's task state then allows (another request may have got in between)."""
    if s.status == GONE:
        return 404, s
    if s.busy in (None, "stop", "start", "delete"):
        return 204, replace(s, busy="delete")
    return 409, s


def finish(s: Srv) -> Srv:
    """The state the work a request started leaves once done."""
    busy = s.busy
    if busy == "move":
        return replace(s, status=VERIFY, flavor=s.target, host=None, busy=None, target=None,
                       old_flavor=s.flavor, old_status=s.status, source_host=s.host)
    if busy in ("confirm", "delete-confirm"):
        return replace(s, status=s.old_status, busy=None, move=None, old_flavor=None,
                       old_status=None, source_host=None)
    if busy == "revert":
        return replace(s, status=s.old_status, flavor=s.old_flavor, host=s.source_host,
                       busy=None, move=None, old_flavor=None, old_status=None,
                       source_host=None)
    if busy == "stop":
        return replace(s, status=SHUTOFF, busy=None)
    if busy == "start":
        return replace(s, status=ACTIVE, busy=None)
    if busy == "delete":
        return replace(s, status=GONE, busy=None)
    raise AssertionError(f"nothing to finish in {s}")


State = tuple[tuple[str, Srv], ...]


def serial_outcomes(servers: dict[str, Srv], ops: list[Op],
                    quota: dict[int, str] | None = None
                    ) -> dict[tuple[int, ...], set[State]]:
    """Every answer vector some serial order of ``ops`` gives, with the settled states
    it may leave. Between two requests, any work already started may or may not have
    finished, so every interleaving of requests and completions is explored.
    ``quota`` says, per index of a resize in ``ops``, whether the project's cores
    let it pass ("ok", the default), not ("over": 403) or depending on who else
    is taking cores at the same moment ("maybe")."""
    quota = quota or {}
    results: dict[tuple[int, ...], set[State]] = {}
    seen: set = set()

    def explore(state: State, progress: tuple[int, ...], codes: tuple[int, ...]) -> None:
        key = (state, progress, codes)
        if key in seen:
            return
        seen.add(key)
        current = dict(state)
        busy = [k for k, s in current.items() if s.busy is not None]
        if all(p == 2 for p in progress) and not busy:
            results.setdefault(codes, set()).add(state)
            return
        for i, (k, kind, arg) in enumerate(ops):
            if progress[i] == 2 or (progress[i] == 1 and current[k].busy == "delete-confirm"):
                continue
            if progress[i] == 0:
                code, after = admit(kind, arg, current[k])
            else:
                code, after = delete_after_confirm(current[k])
            step = 1 if code == CONFIRMING_FIRST else 2
            verdict = quota.get(i, "ok") if kind == "resize" and code == 202 else "ok"
            if verdict in ("over", "maybe"):
                explore(state, _set(progress, i, 2), _set(codes, i, 403))
            if verdict in ("ok", "maybe"):
                explore(_with(current, k, after), _set(progress, i, step),
                        _set(codes, i, code))
        for k in busy:
            explore(_with(current, k, finish(current[k])), progress, codes)

    explore(tuple(sorted(servers.items())), (0,) * len(ops), (-1,) * len(ops))
    return results


def _with(current: dict[str, Srv], key: str, s: Srv) -> State:
    changed = dict(current)
    changed[key] = s
    return tuple(sorted(changed.items()))


def _set(values: tuple[int, ...], index: int, value: int) -> tuple[int, ...]:
    return values[:index] + (value,) + values[index + 1:]


def mismatch(s: Srv, seen: dict | None) -> str | None:
    """Why the observed server is not the modelled one (None: it is)."""
    if s.status == GONE:
        return None if seen is None else f"should be gone, is {seen['status']}"
    if seen is None:
        return f"is gone, should be {s.status}"
    task = seen["OS-EXT-STS:task_state"]
    if task is not None or seen["status"] not in SETTLED:
        return f"still working: {seen['status']}/{task}"
    if seen["status"] != s.status:
        return f"is {seen['status']}, should be {s.status}"
    flavor = FLAVOR_BY_NAME.get(seen["flavor"]["original_name"])
    if flavor != s.flavor:
        return f"has flavor {seen['flavor']['original_name']}, should have {s.flavor}"
    host = mh.host_of(seen)
    if s.host is not None and host != s.host:
        return f"is on {host}, should be on {s.host}"
    if host is None or mh.cell_of_host(host) not in FLAVORS[s.flavor].cells:
        return f"is on {host}, outside the cells of flavor {s.flavor}"
    if s.status == VERIFY:
        if s.move == "migrate" and host == s.source_host:
            return f"migrated to its own host {host}"
        powered = seen["OS-EXT-STS:power_state"] == 1
        if powered != (s.old_status == ACTIVE):
            return f"power state {seen['OS-EXT-STS:power_state']} after moving from " \
                   f"{s.old_status}"
    return None


# --- talking to the cloud --------------------------------------------------------------


def at_once(calls: list[Callable[[], requests.Response]]) -> list[requests.Response]:
    """Run every call on its own thread, released together by a barrier."""
    barrier = threading.Barrier(len(calls))
    answers: list[requests.Response | BaseException | None] = [None] * len(calls)

    def run(index: int) -> None:
        barrier.wait(timeout=30)
        try:
            answers[index] = calls[index]()
        except BaseException as exc:  # reported below, on the test's thread
            answers[index] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=180)
    for answer in answers:
        if answer is None:
            raise AssertionError("a request never came back")
        if isinstance(answer, BaseException):
            raise answer
    return answers  # type: ignore[return-value]


class Lifecycles(RuleBasedStateMachine):
    """The cloud is given by the test, once per module (``cloud`` and ``inspector``)."""

    cloud: CloudProcess
    inspector: mh.Inspector
    journal: list[str]
    tally: Counter
    seconds: Counter

    def __init__(self) -> None:
        super().__init__()
        self.servers: dict[str, Srv] = {}    # live servers by id
        self.gone: list[str] = []            # deleted, checked gone
        self.owners: dict[str, str] = {}     # every server ever created, by id
        self.steps_here = 0
        self.since_audit = 0
        self.seen: dict[str, dict] = {}      # the cloud as the last step left it
        self.worked = True                   # the last step changed something

    # --- plumbing ----------------------------------------------------------------------
    def request(self, op: Op) -> Callable[[], requests.Response]:
        server_id, kind, arg = op
        owner = self.owners[server_id]
        path = f"{COMPUTE}/servers/{server_id}"
        if kind == "delete":
            return lambda: self.cloud.request("DELETE", path, cloud=owner)
        body = {"resize": {"resize": {"flavorRef": arg}}, "migrate": {"migrate": None},
                "confirm": {"confirmResize": None}, "revert": {"revertResize": None},
                "stop": {"os-stop": None}, "start": {"os-start": None}}[kind]
        who = ADMIN if kind == "migrate" else owner
        return lambda: self.cloud.request("POST", f"{path}/action", cloud=who, json=body)

    def create_request(self, owner: str, flavor: str) -> Callable[[], requests.Response]:
        body = {"server": {"name": f"prop-{flavor}", "flavorRef": flavor,
                           "imageRef": self.image, "networks": [{"uuid": self.network}]}}
        return lambda: self.cloud.request("POST", f"{COMPUTE}/servers", cloud=owner,
                                          json=body)

    def known(self, server_id: str) -> Srv:
        return self.servers.get(server_id) or Srv(self.owners[server_id], GONE, "1")

    def log(self, text: str) -> None:
        self.journal.append(f"{len(self.journal):4d} {text}")

    def count(self, owner: str) -> int:
        return sum(1 for s in self.servers.values() if s.owner == owner)

    # --- one step: send, check the answers, settle, check the cloud --------------------
    def run_step(self, ops: list[Op], creates: list[tuple[str, str]]) -> None:
        self.steps_here += 1
        began = time.monotonic()
        calls = [self.request(op) for op in ops] + [self.create_request(*c) for c in creates]
        answers = [calls[0]()] if len(calls) == 1 else at_once(calls)
        if len(calls) > 1:
            self.tally[("at once", len(calls))] += 1
        codes = tuple(a.status_code for a in answers[:len(ops)])
        created = [a for a in answers[len(ops):]]
        desc = ", ".join([f"{k}({arg or ''})@{sid[:8]}={c}"
                          for (sid, k, arg), c in zip(ops, codes, strict=True)] +
                         [f"create({f})@{o[-4:]}={a.status_code}"
                          for (o, f), a in zip(creates, created, strict=True)])
        self.log(desc)
        for (_, kind, _), answer in zip(ops, answers, strict=False):
            self.tally[(kind, answer.status_code)] += 1
            self.check_envelope(answer)
        for answer in created:
            self.tally[("create", answer.status_code)] += 1
            self.check_envelope(answer)

        involved = {sid: self.known(sid) for sid, _, _ in ops}
        outcomes = serial_outcomes(involved, ops, self.core_verdicts(ops, creates))
        assert codes in outcomes, (
            f"answers {desc} are not what any serial order allows: "
            f"{sorted(outcomes)}; bodies: {[a.text[:300] for a in answers]}")
        candidates = outcomes[codes]
        new_ids = self.check_creates(creates, created, ops, codes)
        worked = any(200 <= c < 300 for c in codes) or bool(new_ids)
        self.settle(candidates, new_ids, worked)
        accepted = sorted({kind for (_, kind, _), c in zip(ops, codes, strict=True)
                           if 200 <= c < 300} | ({"create"} if new_ids else set()))
        self.seconds["+".join(accepted) or "refused"] += time.monotonic() - began

    def cores_used(self, owner: str) -> int:
        """What the quota counts: a server waiting in VERIFY_RESIZE at the larger of
        its two flavors (Placement holds both)."""
        return sum(max(FLAVORS[s.flavor].vcpus,
                       FLAVORS[s.old_flavor].vcpus if s.old_flavor else 0)
                   for s in self.servers.values() if s.owner == owner)

    def core_verdicts(self, ops: list[Op], creates: list[tuple[str, str]]
                      ) -> dict[int, str]:
        """Per resize that grows its server: do the project's cores let it pass?
        Alone the answer is certain; racing other requests of the project that
        take or give back cores, it depends on the order."""
        def growth(op: Op) -> int:
            sid, kind, arg = op
            s = self.known(sid)
            if kind != "resize" or s.status == GONE:
                return 0
            return max(0, FLAVORS[arg].vcpus - FLAVORS[s.flavor].vcpus)

        verdicts = {}
        for i, op in enumerate(ops):
            if not growth(op):
                continue
            owner = self.known(op[0]).owner
            used = self.cores_used(owner)
            rivals = [o for j, o in enumerate(ops) if j != i and
                      self.known(o[0]).owner == owner]
            taken = sum(growth(o) for o in rivals) + sum(
                FLAVORS[f].vcpus for o, f in creates if o == owner)
            gives_back = any(o[1] in ("confirm", "revert", "delete") for o in rivals)
            if used + growth(op) > QUOTA_CORES:
                verdicts[i] = "maybe" if gives_back else "over"
            elif used + growth(op) + taken > QUOTA_CORES:
                verdicts[i] = "maybe"
        return verdicts

    def check_envelope(self, answer: requests.Response) -> None:
        assert answer.status_code < 500, answer.text
        if answer.status_code in (400, 403, 404, 409):
            body = answer.json()
            [(_, inner)] = body.items()
            assert inner["code"] == answer.status_code, body

    def check_creates(self, creates: list[tuple[str, str]], answers: list[requests.Response],
                      ops: list[Op], codes: tuple[int, ...]) -> dict[str, Srv]:
        """Creates at the quota edge: 202 or 403, never more than the free slots
        (deletes accepted in the same step may have freed some), and all of them
        when there is room for all (the quota recheck counts only what exists)."""
        new: dict[str, Srv] = {}
        for owner in sorted({o for o, _ in creates}):
            mine = [(f, a) for (o, f), a in zip(creates, answers, strict=True) if o == owner]
            ended = {sid: kind for (sid, kind, _), code in zip(ops, codes, strict=True)
                     if kind in ("delete", "confirm", "revert") and code in (202, 204)
                     and self.known(sid).owner == owner}
            # every create flavor has 1 vCPU; what the requests that ended something
            # may have given back is bounded by all the cores their servers hold
            free = min(QUOTA_INSTANCES - self.count(owner), QUOTA_CORES - self.cores_used(owner))
            freed = [sid for sid, kind in ended.items() if kind == "delete"]
            freed_cores = sum(max(FLAVORS[s.flavor].vcpus,
                                  FLAVORS[s.old_flavor].vcpus if s.old_flavor else 0)
                              for s in map(self.known, ended))
            most = min(QUOTA_INSTANCES - self.count(owner) + len(freed),
                       QUOTA_CORES - self.cores_used(owner) + freed_cores)
            contested = any(kind in ("resize", "revert") and self.known(sid).owner == owner
                            for sid, kind, _ in ops)
            accepted = [(f, a) for f, a in mine if a.status_code == 202]
            for _, answer in mine:
                assert answer.status_code in (202, 403), answer.text
                if answer.status_code == 403:
                    assert "Quota exceeded for" in answer.text, answer.text
            if free >= len(mine) and not contested:
                assert len(accepted) == len(mine), (free, [a.text for _, a in mine])
            elif not ops and free <= 0:
                assert not accepted, (free, [a.text for _, a in mine])
            assert len(accepted) <= most, (free, most, [a.text for _, a in mine])
            for flavor, answer in accepted:
                new[answer.json()["server"]["id"]] = Srv(owner, ACTIVE, flavor)
                self.owners[answer.json()["server"]["id"]] = owner
        return new

    def observe(self) -> dict[str, dict]:
        resp = self.cloud.request("GET", f"{COMPUTE}/servers/detail?all_tenants=1",
                                  version="2.53")
        assert resp.status_code == 200, resp.text
        return {s["id"]: s for s in resp.json()["servers"]}

    def settle(self, candidates: set[State], new_ids: dict[str, Srv], worked: bool) -> None:
        """Wait until the cloud matches one of the states the answers allow, then check
        everything else about it."""
        deadline = time.monotonic() + SETTLE_TIMEOUT
        quiet: tuple | None = None
        quiet_since = time.monotonic()
        while True:
            seen = self.observe()
            found, why = self.match(candidates, new_ids, seen)
            if found is not None:
                break
            # nothing running and nothing changing: waiting longer will not help
            snapshot = tuple(sorted(
                (sid, s["status"], s["OS-EXT-STS:task_state"], s["flavor"]["original_name"],
                 mh.host_of(s), s["OS-EXT-STS:power_state"]) for sid, s in seen.items()))
            if snapshot != quiet or any(s[2] is not None or s[1] not in SETTLED
                                        for s in snapshot):
                quiet, quiet_since = snapshot, time.monotonic()
            if time.monotonic() > deadline or time.monotonic() - quiet_since > QUIET_FOR:
                raise AssertionError(f"the cloud never matched the model: {why}\n"
                                     + "\n".join(self.journal[-15:]))
            time.sleep(0.1)
        before = dict(self.servers)
        for sid, s in found.items():
            if s.status == GONE:
                if sid in self.servers:
                    del self.servers[sid]
                    self.gone.append(sid)
                    Lifecycles.all_gone.append(sid)
                    self.check_gone(sid)
            else:
                self.servers[sid] = replace(s, host=mh.host_of(seen[sid]))
        self.seen = seen
        self.worked = worked
        changed = [sid for sid, s in self.servers.items() if before.get(sid) != s]
        for sid in changed:
            self.check_mapping(sid, self.servers[sid])

    def match(self, candidates: set[State], new_ids: dict[str, Srv], seen: dict[str, dict]
              ) -> tuple[dict[str, Srv] | None, str]:
        others = {sid: s for sid, s in self.servers.items()}
        others.update(new_ids)
        why = ""
        for candidate in sorted(candidates, key=repr):
            servers = dict(others)
            servers.update(dict(candidate))
            for sid, s in servers.items():
                problem = mismatch(s, seen.get(sid))
                if problem:
                    why = f"{sid[:8]} {problem}"
                    break
            else:
                return servers, ""
        return None, why

    def check_gone(self, sid: str) -> None:
        resp = self.cloud.request("GET", f"{COMPUTE}/servers/{sid}")
        assert resp.status_code == 404, resp.text
        located = self.inspector.locate(sid)
        assert located["disks"] == [], located
        assert all(row["deleted"] for row in located["rows"]), located

    def check_mapping(self, sid: str, s: Srv) -> None:
        """The mapping, the one visible row and the disks agree with the API's host."""
        located = self.inspector.locate(sid)
        cell = mh.cell_of_host(s.host)
        assert located["mapping"]["cell"] == cell, located
        visible = [r for r in located["rows"] if not r["hidden"] and not r["deleted"]]
        assert [(r["cell"], r["host"]) for r in visible] == [(cell, s.host)], located
        hosts = {d["host"] for d in located["disks"]}
        assert s.host in hosts, located
        expected = {s.host, s.source_host} if s.status == VERIFY else {s.host}
        assert hosts <= expected, located

    # --- rules -------------------------------------------------------------------------
    # Every rule draws the same values whatever the cloud answered before (no
    # preconditions, servers chosen by index): hypothesis replays draws, and the
    # cloud's answers (which racing create won, a server's uuid) are not replayable.
    @initialize()
    def setup(self) -> None:
        self.image = mh.image_id(self.cloud)
        self.network = mh.network_id(self.cloud)
        self.seen = self.observe()
        assert not self.seen, "the cloud is not empty at the start of an example"

    def target(self, index: int, kind: str | None = None) -> str | None:
        """Half the time a server the action suits (so moves get confirmed and
        reverted), else any live one; now and then one already deleted (404)."""
        live = list(self.servers)
        if self.gone and (index == INDEX_GONE or not live and index % 4 == 3):
            return self.gone[-1]
        suits = [sid for sid in live if self.servers[sid].status in SUITS.get(kind, ())]
        if index % 2 == 0 and suits:
            return suits[index // 2 % len(suits)]
        return live[index % len(live)] if live else None

    def act(self, index: int, kind: str, arg: str | None = None) -> None:
        sid = self.target(index, kind)
        if sid is None:
            self.run_step([], [(DEMO, "11")])
        else:
            self.run_step([(sid, kind, arg)], [])

    @rule(owner=st.sampled_from((DEMO, ALT)), flavors=st.lists(
        st.sampled_from(CREATE_FLAVORS), min_size=1, max_size=4))
    def create(self, owner: str, flavors: list[str]) -> None:
        """One create, or a few at once by one project (racing for its last slots)."""
        self.run_step([], [(owner, flavor) for flavor in flavors])

    @rule(index=INDEX, flavor=st.sampled_from(RESIZE_FLAVORS))
    def resize(self, index: int, flavor: str) -> None:
        self.act(index, "resize", flavor)

    @rule(index=INDEX)
    def migrate(self, index: int) -> None:
        self.act(index, "migrate")

    @rule(index=INDEX)
    def confirm(self, index: int) -> None:
        self.act(index, "confirm")

    @rule(index=INDEX)
    def revert(self, index: int) -> None:
        self.act(index, "revert")

    @rule(index=INDEX)
    def stop(self, index: int) -> None:
        self.act(index, "stop")

    @rule(index=INDEX)
    def start(self, index: int) -> None:
        self.act(index, "start")

    @rule(index=INDEX)
    def delete(self, index: int) -> None:
        self.act(index, "delete")

    @rule(first=INDEX, second=INDEX, requests=st.lists(st.tuples(
        st.integers(0, 9), st.sampled_from((DEMO, ALT)), st.sampled_from(CREATE_FLAVORS),
        st.sampled_from(SERVER_ACTIONS), st.sampled_from(RESIZE_FLAVORS), st.booleans()),
        min_size=2, max_size=4))
    def concurrently(self, first: int, second: int, requests: list[tuple]) -> None:
        """2-4 requests at once on one or two servers; one in ten is a create. Each
        server is chosen as for the first request sent to it, so races of confirm and
        revert, or of delete and a move, are common."""
        targets = [self.target(first, next((r[3] for r in requests if not r[5]), None)),
                   self.target(second, next((r[3] for r in requests if r[5]), None))]
        ops: list[Op] = []
        creates: list[tuple[str, str]] = []
        for create_roll, owner, cflavor, kind, rflavor, other in requests:
            sid = targets[1 if other else 0]
            if create_roll == 9 or sid is None:
                creates.append((owner, cflavor))
            else:
                ops.append((sid, kind, rflavor if kind == "resize" else None))
        self.run_step(ops, creates)
    # --- invariants: checked after every step, on what settle() last saw ---------------
    @invariant()
    def only_known_servers_all_settled(self) -> None:
        assert set(self.seen) == set(self.servers), (set(self.seen) ^ set(self.servers))
        for sid, found in self.seen.items():
            assert found["status"] in SETTLED, (sid, found["status"])
            assert found["OS-EXT-STS:task_state"] is None, (sid, found)

    @invariant()
    def no_project_over_its_quota(self) -> None:
        per_project = Counter(found["tenant_id"] for found in self.seen.values())
        assert max(per_project.values(), default=0) <= QUOTA_INSTANCES, per_project
        # the model matched the cloud's flavors, so its count of cores is the cloud's
        for owner in (DEMO, ALT):
            assert self.cores_used(owner) <= QUOTA_CORES, (owner, self.cores_used(owner))

    @invariant()
    def audit_is_clean(self) -> None:
        # A step everyone refused changed nothing (settle() showed it): audit it in
        # passing only, so most of the run's time goes to steps that did something.
        self.since_audit += 1
        if self.worked or self.since_audit >= 5:
            self.inspector.assert_clean()
            self.since_audit = 0

    def teardown(self) -> None:
        """Delete everything; the cloud ends as clean as it began."""
        began = time.monotonic()
        try:
            ids = sorted(self.servers)
            if ids:
                deletes = at_once([self.request((sid, "delete", None)) for sid in ids])
                for resp in deletes:
                    assert resp.status_code in (204, 404), resp.text
            for sid in ids:
                self.cloud.wait_gone(sid, timeout=SETTLE_TIMEOUT)
                self.check_gone(sid)
                Lifecycles.all_gone.append(sid)
            self.servers.clear()
            assert not self.observe()
            self.inspector.assert_clean()
        finally:
            Lifecycles.total_steps += self.steps_here
            self.seconds["teardown"] += time.monotonic() - began

    total_steps = 0
    all_gone: list[str] = []


# --- the tests -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def lcloud(tmp_path_factory):
    state_dir = str(tmp_path_factory.mktemp("lifecycles"))
    with open(os.path.join(state_dir, "transcell.conf"), "w") as fh:
        fh.write(f"[quota]\ninstances = {QUOTA_INSTANCES}\ncores = {QUOTA_CORES}\n")
    proc = start_cloud(state_dir)
    cloud = CloudProcess(state_dir, proc.port)
    inspector = mh.Inspector(state_dir)
    try:
        yield cloud, inspector
        # the operator's own commands agree with the inspector at the end
        report = json.loads(cloud.transcell("audit", "--json", check=False).stdout)
        assert report == {"ok": True, "problems": []}, report
        for sid in Lifecycles.all_gone[-1:]:
            assert mh.locate(cloud, sid)["disks"] == []
    finally:
        inspector.close()
        stop_cloud(proc)


def run_lifecycles(lcloud, steps: int, chosen_seed: int | None = None) -> None:
    """``steps`` steps in examples of STEPS_PER_EXAMPLE; derandomized unless a seed
    is chosen (TRANSCELL_PROPERTY_SEED overrides either)."""
    if "TRANSCELL_PROPERTY_SEED" in os.environ:
        chosen_seed = int(os.environ["TRANSCELL_PROPERTY_SEED"])
    Lifecycles._hypothesis_internal_use_seed = None  # set by seed() below
    if chosen_seed is not None:
        seed(chosen_seed)(Lifecycles)
    cloud, inspector = lcloud
    for name in (ADMIN, DEMO, ALT):
        cloud.token(name)
    Lifecycles.cloud, Lifecycles.inspector = cloud, inspector
    Lifecycles.journal, Lifecycles.tally, Lifecycles.seconds = [], Counter(), Counter()
    Lifecycles.total_steps = 0
    phases = [Phase.explicit, Phase.generate]
    if os.environ.get("TRANSCELL_PROPERTY_SHRINK") == "1":
        phases.append(Phase.shrink)
    started = time.monotonic()
    try:
        run_state_machine_as_test(Lifecycles, settings=settings(
            max_examples=max(1, -(-steps // STEPS_PER_EXAMPLE)),
            stateful_step_count=STEPS_PER_EXAMPLE, derandomize=chosen_seed is None,
            database=None,
            deadline=None, phases=phases, print_blob=False,
            suppress_health_check=list(HealthCheck)))
    finally:
        print(f"\n{Lifecycles.total_steps} steps in {time.monotonic() - started:.0f}s "
              f"(seed {chosen_seed if chosen_seed is not None else 'derandomized'}); "
              f"answers: {dict(sorted(Lifecycles.tally.items()))}")
        print("seconds by what the step started: "
              f"{ {k: round(v) for k, v in Lifecycles.seconds.most_common()} }")
        print("\n".join(Lifecycles.journal[-40:]))
    # a run too short to reach the interesting states would pass without testing them
    assert Lifecycles.total_steps >= steps // 2, Lifecycles.total_steps
    for wanted in (("resize", 202), ("confirm", 204), ("revert", 202), ("delete", 204),
                   ("create", 403), ("migrate", 202)):
        assert Lifecycles.tally[wanted], f"the run never saw {wanted}"


@pytest.mark.timeout(1200)
def test_random_lifecycles_keep_every_invariant(lcloud):
    run_lifecycles(lcloud, DEFAULT_STEPS, chosen_seed=4242)


@pytest.mark.slow
@pytest.mark.timeout(4 * 3600)
def test_random_lifecycles_longer(lcloud, request):
    marks = request.config.getoption("markexpr", "") or ""
    if "TRANSCELL_PROPERTY_SLOW_STEPS" not in os.environ and (
            "slow" not in marks or "not slow" in marks):
        pytest.skip("long run: select it with -m slow or TRANSCELL_PROPERTY_SLOW_STEPS")
    run_lifecycles(lcloud, SLOW_STEPS, chosen_seed=20261202)


def test_serial_model_allows_one_ending_of_a_move():
    """The model itself: confirm and revert sent together, exactly one wins; two
    resizes, at most one 202; stop then start may both pass once the stop is done."""
    moved = Srv(DEMO, VERIFY, "21", "cell2-host1", old_flavor="11", old_status=ACTIVE,
                source_host="cell1-host1", move="resize")
    outcomes = serial_outcomes({"a": moved}, [("a", "confirm", None), ("a", "revert", None)])
    assert set(outcomes) == {(204, 409), (409, 202)}
    [[(_, reverted)]] = [list(s) for s in outcomes[(409, 202)]]
    assert (reverted.status, reverted.host, reverted.flavor) == (ACTIVE, "cell1-host1", "11")
    active = Srv(DEMO, ACTIVE, "11", "cell1-host1")
    two = serial_outcomes({"a": active}, [("a", "resize", "21"), ("a", "resize", "22")])
    assert all(sum(c == 202 for c in codes) <= 1 for codes in two), two
    power = serial_outcomes({"a": active}, [("a", "stop", None), ("a", "start", None)])
    assert set(power) == {(202, 409), (202, 202)}
    deleting = serial_outcomes({"a": moved}, [("a", "delete", None), ("a", "stop", None)])
    assert (204, 409) in deleting and (204, 202) in deleting
    assert all(dict(s)["a"].status == GONE for s in deleting[(204, 409)])


def test_model_never_lets_two_moves_of_one_server_both_pass():
    for first, second in itertools.product(RESIZE_FLAVORS, repeat=2):
        for start in (ACTIVE, SHUTOFF):
            s = Srv(DEMO, start, "11", "cell1-host1")
            outcomes = serial_outcomes({"a": s}, [("a", "resize", first),
                                                  ("a", "resize", second)])
            assert all(codes.count(202) <= 1 for codes in outcomes)


def test_two_deletes_sent_together_both_succeed(lcloud):
    """Deleting is idempotent one request at a time (a second DELETE of a server being
    deleted is 204); sent together, both must be 204 too."""
    cloud, inspector = lcloud
    cloud.token(mh.USER)
    for round_ in range(3):
        sid = mh.boot(cloud, f"deleted-at-once-{round_}", flavor="1")["id"]
        path = f"{COMPUTE}/servers/{sid}"
        answers = at_once([lambda p=path: cloud.request("DELETE", p, cloud=mh.USER)] * 3)
        cloud.wait_gone(sid)
        assert inspector.locate(sid)["disks"] == []
        assert [a.status_code for a in answers] == [204] * 3, [a.text for a in answers]
    inspector.assert_clean()
