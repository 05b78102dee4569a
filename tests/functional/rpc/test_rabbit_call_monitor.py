"""Long calls on RabbitMQ are monitored: a method that keeps running keeps its call alive
through heartbeats, and a serving process killed mid-call fails the call within the
monitor timeout instead of the call's full timeout."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from transcell import exception
from transcell.context import RequestContext
from transcell.rpc.rabbit import RabbitBus, private_conf

pytestmark = [pytest.mark.distributed]

CTX = RequestContext(user_id="u", project_id="p", roles=["member"])
MONITOR = 3  # the server heartbeats every 1.5 s
TIMEOUT = 30  # what the call would wait without call monitoring

# A compute host of its own: serves ``compute.doomed`` on the vhost in argv[1] and says
# when it is serving and when its long method started, so the test knows when to kill it.
SERVER = """
import sys, time
from transcell.rpc.rabbit import RabbitBus

class Host:
    def long_step(self, ctx, seconds):
        print("running", flush=True)
        time.sleep(seconds)
        return "finished"

bus = RabbitBus(sys.argv[1], server="doomed")
bus.serve("compute.doomed", Host())
print("serving", flush=True)
sys.stdin.read()
bus.stop()
"""


class Slow:
    def long_step(self, ctx: RequestContext, seconds: float) -> str:
        time.sleep(seconds)
        return "finished"


class Recorder:
    def __init__(self) -> None:
        self.ran: list[int] = []

    def step(self, ctx: RequestContext, n: int) -> int:
        self.ran.append(n)
        return n


def _one_thread_conf():
    """A server that runs its messages one at a time, in the order they were queued."""
    import oslo_messaging.opts

    conf = private_conf()
    for group, opts in oslo_messaging.opts.list_opts():
        if group is None:
            conf.register_opts([opt for opt in opts if opt.name == "executor_thread_pool_size"])
    conf.set_override("executor_thread_pool_size", 1)
    return conf


class Lines:
    """A child's stdout read by a thread, so waiting for a line can time out."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self.lines: queue.Queue[str] = queue.Queue()
        assert proc.stdout is not None
        stdout = proc.stdout
        threading.Thread(target=lambda: [self.lines.put(line.strip()) for line in stdout],
                         daemon=True).start()

    def expect(self, wanted: str, within: float) -> None:
        deadline = time.monotonic() + within
        while True:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                pytest.fail(f"the server did not print {wanted!r} within {within} s")
            if line == wanted:
                return


@pytest.fixture
def server_process(rabbit_url: str) -> Iterator[tuple[subprocess.Popen, Lines]]:
    proc = subprocess.Popen([sys.executable, "-c", SERVER, rabbit_url],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        lines = Lines(proc)
        lines.expect("serving", within=60)
        yield proc, lines
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)


def _call_in_thread(bus, **kwargs: Any) -> tuple[queue.Queue, float]:
    """Start a call; its outcome (result or exception) arrives on the queue."""
    outcome: queue.Queue = queue.Queue()

    def run() -> None:
        try:
            outcome.put(bus.call(CTX, **kwargs))
        except Exception as exc:  # handed to the test
            outcome.put(exc)

    threading.Thread(target=run, daemon=True).start()
    return outcome, time.monotonic()


def test_heartbeats_keep_a_call_alive_past_the_monitor_timeout(rabbit_url, make_bus):
    served, client = make_bus(rabbit_url, "host-a"), make_bus(rabbit_url, "conductor")
    served.serve("compute.host-a", Slow())
    started = time.monotonic()
    # well past the monitor timeout: only heartbeats from the serving side get it there
    assert client.call(CTX, "compute.host-a", "long_step", timeout=TIMEOUT,
                       rpc_call_monitor_timeout=MONITOR, seconds=2 * MONITOR + 1) == "finished"
    assert time.monotonic() - started >= 2 * MONITOR + 1


def test_a_call_without_heartbeats_still_times_out_on_its_own_timeout(rabbit_url, make_bus):
    """The monitor only shortens a call whose server went silent; a plain call that
    outlives its timeout fails as before."""
    served, client = make_bus(rabbit_url, "host-a"), make_bus(rabbit_url, "conductor")
    served.serve("compute.host-a", Slow())
    with pytest.raises(exception.RPCTimeout):
        client.call(CTX, "compute.host-a", "long_step", timeout=2, seconds=MONITOR)


def test_a_server_killed_mid_call_fails_the_call_within_the_monitor_timeout(
        rabbit_url, make_bus, server_process):
    proc, lines = server_process
    client = make_bus(rabbit_url, "conductor")
    outcome, _ = _call_in_thread(client, topic="compute.doomed", method="long_step",
                                 timeout=TIMEOUT, rpc_call_monitor_timeout=MONITOR,
                                 seconds=TIMEOUT * 2)
    lines.expect("running", within=30)
    # the call outlives its monitor timeout while the method runs ...
    with pytest.raises(queue.Empty):
        outcome.get(timeout=MONITOR + 1)
    # ... and fails soon after the process working on it is gone
    os.kill(proc.pid, signal.SIGKILL)
    killed = time.monotonic()
    try:
        result = outcome.get(timeout=MONITOR + 5)
    except queue.Empty:
        pytest.fail(f"the call was still waiting {MONITOR + 5} s after its server died")
    waited = time.monotonic() - killed
    assert isinstance(result, exception.RPCTimeout), result
    assert waited <= MONITOR + 3, waited
    assert proc.wait(timeout=10) == -signal.SIGKILL


def test_a_call_taken_after_its_caller_gave_up_is_dropped(rabbit_url, make_bus):
    """The host was down when the call was sent: the caller gives up after the monitor
    timeout, and the host coming back must not run the step the caller gave up on."""
    client = make_bus(rabbit_url, "conductor")
    served = RabbitBus(rabbit_url, server="host-a", conf=_one_thread_conf())
    recorder = Recorder()
    try:
        served.serve("compute.host-a", recorder)
        served.unserve("compute.host-a")  # its queues stay; nobody takes their messages
        monitor = 2
        sent = time.time()
        with pytest.raises(exception.RPCTimeout):
            client.call(CTX, "compute.host-a", "step", timeout=TIMEOUT, rpc_server="host-a",
                        rpc_call_monitor_timeout=monitor, n=1)
        assert time.time() - sent < monitor + 3
        # let the moment pass after which the host may take the caller for gone
        time.sleep(max(0.0, sent + 2 * monitor - time.time()) + 0.5)
        served.serve("compute.host-a", recorder)
        # one thread, queue order: once the second call answers, the first was handled
        assert client.call(CTX, "compute.host-a", "step", rpc_server="host-a", n=2) == 2
        assert recorder.ran == [2]
    finally:
        served.stop()
