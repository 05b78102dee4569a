"""Two writes of one server's metadata sent at once, through the API of a real cloud:
each race ends as one of the two serial orders would have ended it, answers included
(replace-all against a merge, against a one-key update, against a delete of a key)."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import movehelpers as mh
import pytest
import requests
from test_races import at_once

COMPUTE = mh.COMPUTE
ROUNDS = 8
START = {"a": "0", "x": "9"}

#: a request: (method, path suffix, body); ``apply`` plays it on a model of the metadata
Request = tuple[str, str, Any]


def apply(state: dict[str, str], request: Request) -> tuple[dict[str, str], tuple]:
    """Nova's meaning of one request on ``state``: the state after, and the answer
    (status and body) it gets when it runs alone on that state."""
    method, suffix, body = request
    after = dict(state)
    if suffix == "" and method == "PUT":
        after = dict(body["metadata"])
        return after, (200, {"metadata": after})
    if suffix == "" and method == "POST":
        after.update(body["metadata"])
        return after, (200, {"metadata": after})
    key = suffix.removeprefix("/")
    if method == "PUT":
        after[key] = body["meta"][key]
        return after, (200, {"meta": {key: body["meta"][key]}})
    if key not in after:
        return after, (404, None)
    del after[key]
    return after, (204, None)


def serial_outcomes(requests_: list[Request]) -> list[tuple[dict, list[tuple]]]:
    """(final metadata, each request's answer) for every order of running them alone."""
    outcomes = []
    for order in itertools.permutations(range(len(requests_))):
        state, answers = dict(START), [()] * len(requests_)
        for index in order:
            state, answers[index] = apply(state, requests_[index])
        outcomes.append((state, answers))
    return outcomes


def send(cloud, sid: str, request: Request) -> Callable[[], requests.Response]:
    method, suffix, body = request
    return lambda: cloud.request(method, f"{COMPUTE}/servers/{sid}/metadata{suffix}",
                                 cloud=mh.USER, json=body)


def answer_of(resp: requests.Response) -> tuple:
    if resp.status_code in (204, 404):
        return (resp.status_code, None)
    return (resp.status_code, resp.json())


def metadata(cloud, sid: str) -> dict[str, str]:
    resp = cloud.request("GET", f"{COMPUTE}/servers/{sid}/metadata", cloud=mh.USER)
    assert resp.status_code == 200, resp.text
    return resp.json()["metadata"]


RACES = {
    "replace-vs-merge": [("PUT", "", {"metadata": {"a": "1", "b": "2"}}),
                         ("POST", "", {"metadata": {"b": "3", "c": "4"}})],
    "replace-vs-one-key": [("PUT", "", {"metadata": {"a": "1", "b": "2"}}),
                           ("PUT", "/b", {"meta": {"b": "5"}})],
    "delete-vs-replace-keeping-it": [("DELETE", "/x", None),
                                     ("PUT", "", {"metadata": {"x": "7", "y": "8"}})],
    "delete-vs-replace-dropping-it": [("DELETE", "/x", None),
                                      ("PUT", "", {"metadata": {"y": "8"}})],
    "delete-vs-one-key": [("DELETE", "/x", None), ("PUT", "/x", {"meta": {"x": "6"}})],
}


@pytest.fixture(scope="module")
def racer(mcloud):
    server = mh.boot(mcloud, "metadata-races", flavor="1")
    mcloud.token(mh.USER)
    yield mcloud, server["id"]
    mcloud.request("DELETE", f"{COMPUTE}/servers/{server['id']}")
    mcloud.wait_gone(server["id"])


@pytest.mark.parametrize("race", sorted(RACES))
def test_two_metadata_writes_at_once_end_as_a_serial_order(racer, race):
    cloud, sid = racer
    requests_ = RACES[race]
    allowed = serial_outcomes(requests_)
    seen = set()
    for _ in range(ROUNDS):
        reset = cloud.request("PUT", f"{COMPUTE}/servers/{sid}/metadata", cloud=mh.USER,
                              json={"metadata": START})
        assert reset.status_code == 200, reset.text
        answers = [answer_of(r) for r in at_once([send(cloud, sid, r) for r in requests_])]
        final = metadata(cloud, sid)
        assert (final, answers) in allowed, (race, final, answers)
        seen.add(allowed.index((final, answers)))
    # the serial orders may coincide; whatever happened was one of them every round
    assert seen
    assert mh.server(cloud, sid)["OS-EXT-STS:task_state"] is None


def test_the_model_tells_the_orders_apart():
    """The check above can fail: orders that end differently are told apart."""
    outcomes = serial_outcomes(RACES["replace-vs-merge"])
    assert outcomes[0] != outcomes[1]
    assert outcomes[0][0] == {"a": "1", "b": "3", "c": "4"}  # replace, then merge
    assert outcomes[1][0] == {"a": "1", "b": "2"}            # merge, then replace
    delete_first, put_first = serial_outcomes(RACES["delete-vs-replace-dropping-it"])
    assert delete_first[1][0] == (204, None) and put_first[1][0] == (404, None)
