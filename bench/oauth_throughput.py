"""Throughput of the vendor endpoints under gunicorn, each beside a hello-world endpoint.

Serves the app (``bench/app_with_hello.py``: the production app plus ``GET /bench/hello``)
with gunicorn, 2 workers, on 127.0.0.1, over a real TinyDB data directory in a temporary
folder (fsync on; the audit log's fsyncs as ``--audit-sync`` says, by default on every
append, shared by the appends a worker's threads make at once). Then, in one run, each
endpoint gets a phase bounded in time and in request count, split into rounds that
alternate with hello-world rounds of the same length (so a change in the machine's
background load touches both alike), and the table compares them:

    profile               GET /api/v1/profile, one bearer token           goal >= 60% of hello
    client credentials    POST /oauth/token, client_secret_basic          goal >= 40%
    refresh               POST /oauth/token, grant_type=refresh_token     goal >= 20%

Beside req/s, p50 and p99 it prints the CPU time the gunicorn workers spent per request
(from /proc), which varies far less than req/s on a shared machine. The verdict is on the
ratio with all rounds pooled; beside it, the lowest and highest ratio of a single round
(each to the hello-world round just before it) show how far the machine moved the figure
within the run.

Refresh tokens rotate, and reusing one revokes its grant, so every refresh request uses a
token of its own: before the run, a pool of customers each gives the vendor a grant and a
refresh chain is started for each. The load generator keeps the pool as a queue: it sends
each token once, from the front, and puts the refresh token each answer carries at the
back, so the pool never runs out however fast the server is, and the requests in a row
are from different customers (a customer comes round again only after the whole pool,
6,000 by default: more than the 4,096 files the store keeps parsed, so each refresh reads
its customer's vault file as a new customer's would). What is left in the queue at the
end of a round starts the next.

The load generator is wrk (``apt-get install wrk``), with a Lua script per round. Without
wrk the script says how to install it and falls back to a bounded Python generator
(one process per connection, keep-alive ``http.client``), which is itself slow: its
figures are lower bounds, and only its ratios are comparable.

    pip install -e '.[bench]'                      # gunicorn
    python bench/oauth_throughput.py               # 10 s a phase in 5 rounds, ~3 minutes
    python bench/oauth_throughput.py --seconds 5 --rounds 1 --refresh-pool 3000
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import multiprocessing
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from vault.access import Principal
from vrm.config import load_config
from vrm.progress import ProgressReporter
from vrm.services import Services, build_services

ROOT = Path(__file__).resolve().parent.parent
# The benchmark measures the token and API paths, not password hashing.
FAST_ARGON2 = {"ARGON2_MEMORY_KIB": 8, "ARGON2_ITERATIONS": 1, "ARGON2_LANES": 1}
PASSWORD = "benchmark password"
HOST = "127.0.0.1"
PROFILE_FIELDS = ("email", "given_name")
PROFILE_SCOPES = tuple(f"profile:{name}" for name in PROFILE_FIELDS)
HELLO = "hello world"
STARTUP_SECONDS = 30.0
MINT_CHUNK = 25


@dataclass(frozen=True)
class Phase:
    """One kind of request to repeat: fixed, or one body per request from ``bodies``.

    With ``follow``, ``bodies`` is a queue that answers refill: a 200 answer's
    ``refresh_token`` joins its back as ``follow`` followed by the token.
    """

    name: str
    method: str
    path: str
    headers: Mapping[str, str] = field(default_factory=dict)
    body: str = ""
    bodies: tuple[str, ...] = ()
    goal: float | None = None
    follow: str = ""


def followed(follow: str, token: str) -> str:
    """The body that sends refresh token ``token``, for a phase that follows ``follow``."""
    return follow + quote(token, safe="")


@dataclass(frozen=True)
class Result:
    """What one run measured: latencies as a histogram (microseconds to count)."""

    requests: int
    seconds: float
    latencies: Mapping[int, int]
    failures: int
    bounded_by_count: bool
    server_cpu: float = 0.0
    #: For a phase that follows its answers: the bodies not sent, in queue order.
    leftover: tuple[str, ...] = ()

    @property
    def rate(self) -> float:
        """Requests per second."""
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def cpu_per_request(self) -> float:
        """Milliseconds of server CPU (all workers, user and system) per request."""
        return self.server_cpu * 1000 / self.requests if self.requests else 0.0

    def percentile(self, percent: float) -> float:
        """The latency (milliseconds) that ``percent`` % of requests did not exceed."""
        total = sum(self.latencies.values())
        if not total:
            return 0.0
        seen = 0
        for micros in sorted(self.latencies):
            seen += self.latencies[micros]
            if seen >= total * percent / 100:
                return micros / 1000
        return max(self.latencies) / 1000


def combine(results: list[Result]) -> Result:
    """One result from the rounds of a phase."""
    latencies: Counter[int] = Counter()
    for result in results:
        latencies.update(result.latencies)
    return Result(
        requests=sum(r.requests for r in results),
        seconds=sum(r.seconds for r in results),
        latencies=latencies,
        failures=sum(r.failures for r in results),
        bounded_by_count=any(r.bounded_by_count for r in results),
        server_cpu=sum(r.server_cpu for r in results),
        leftover=results[-1].leftover if results else (),
    )


@dataclass(frozen=True)
class Row:
    """One endpoint's rounds and the hello-world rounds run just before each of them."""

    phase: Phase
    rounds: list[Result]
    hello_rounds: list[Result]

    @property
    def result(self) -> Result:
        return combine(self.rounds)

    @property
    def hello(self) -> Result:
        return combine(self.hello_rounds)

    @property
    def ratio(self) -> float:
        """The endpoint's req/s over hello-world's, all rounds pooled: the verdict's figure."""
        return _ratio(self.result, self.hello)

    def round_ratios(self) -> list[float]:
        """Each round's req/s over that of the hello-world round just before it, sorted."""
        return sorted(map(_ratio, self.rounds, self.hello_rounds))


def _ratio(result: Result, hello: Result) -> float:
    return result.rate / hello.rate if hello.rate else 0.0


@dataclass(frozen=True)
class Fixture:
    """The vendors, tokens and refresh pool the phases use."""

    shop_auth: str
    counter_auth: str
    access_token: str
    refresh_tokens: list[str]


# Data.


def register_vendors(services: Services) -> tuple[tuple[str, str], tuple[str, str]]:
    """A shop (authorization code and refresh) and a segment counter (client credentials),
    each as (client id, client secret)."""
    shop, shop_secret = services.vendors.register(
        {
            "client_name": "Benchmark Shop",
            "redirect_uris": ["https://shop.bench.example/callback"],
            "grant_types": ["authorization_code", "refresh_token"],
            "scope": " ".join(PROFILE_SCOPES),
            "vrm_field_purposes": dict.fromkeys(PROFILE_FIELDS, "benchmarking"),
        }
    )
    counter, counter_secret = services.vendors.register(
        {
            "client_name": "Benchmark Counter",
            "grant_types": ["client_credentials"],
            "scope": "segments:query",
        }
    )
    assert shop_secret is not None
    assert counter_secret is not None
    return (shop.client_id, shop_secret), (counter.client_id, counter_secret)


def grant_principal(services: Services, number: int, vendor_id: str) -> Principal:
    """A new customer who gives ``vendor_id`` a grant for the profile fields."""
    vault_id = services.vaults.sign_up(f"customer{number}@bench.example", PASSWORD)
    grant = services.consents.give(vault_id, vendor_id, PROFILE_FIELDS)
    return Principal(vault_id, grant.grant_id, grant.epoch)


_worker_services: Services | None = None


def _open_worker(config: dict[str, Any]) -> None:
    global _worker_services
    _worker_services = build_services(config)


def _mint_chunk(job: tuple[range, str]) -> list[str]:
    """Refresh tokens, one per new customer numbered in ``numbers``."""
    numbers, vendor_id = job
    assert _worker_services is not None
    tokens = []
    for number in numbers:
        principal = grant_principal(_worker_services, number, vendor_id)
        tokens.append(_worker_services.access.start_refresh(principal, vendor_id, PROFILE_SCOPES))
    return tokens


def mint_refresh_pool(
    config: dict[str, Any], vendor_id: str, size: int, processes: int
) -> list[str]:
    """``size`` refresh tokens of independent grants, minted by ``processes`` processes."""
    jobs = [(range(n, min(n + MINT_CHUNK, size)), vendor_id) for n in range(0, size, MINT_CHUNK)]
    reporter = ProgressReporter(f"minting {size} customers with a grant and a refresh token")
    tokens: list[str] = []
    context = multiprocessing.get_context("spawn")
    with context.Pool(processes, initializer=_open_worker, initargs=(config,)) as pool:
        for chunk in pool.imap_unordered(_mint_chunk, jobs):
            tokens.extend(chunk)
            reporter.update(len(tokens), size)
    reporter.finish()
    return tokens


def prepare(config: dict[str, Any], pool_size: int, processes: int) -> Fixture:
    """Create keys, vendors, one profile customer with an access token, and the pool."""
    services = build_services(config)
    try:
        (shop_id, shop_secret), counter = register_vendors(services)
        reader = grant_principal(services, pool_size, shop_id)
        services.vaults.set_fields(reader.vault_id, {"given_name": "Ada"})
    finally:
        services.close()
    refresh_tokens = mint_refresh_pool(config, shop_id, pool_size, processes)
    # Minted last, so the 15-minute token outlives the run however long minting took.
    services = build_services(config)
    try:
        access_token, _ = services.access.access_token(shop_id, PROFILE_SCOPES, reader)
    finally:
        services.close()
    return Fixture(basic(shop_id, shop_secret), basic(*counter), access_token, refresh_tokens)


def basic(client_id: str, secret: str) -> str:
    """An HTTP Basic ``Authorization`` value (client_secret_basic)."""
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


def phases(fixture: Fixture) -> list[Phase]:
    """The three measured phases, in the order they run."""
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    follow = urlencode({"grant_type": "refresh_token", "refresh_token": ""})
    refresh_bodies = tuple(followed(follow, token) for token in fixture.refresh_tokens)
    return [
        Phase(
            "profile",
            "GET",
            "/api/v1/profile",
            {"Authorization": f"Bearer {fixture.access_token}"},
            goal=0.60,
        ),
        Phase(
            "client credentials",
            "POST",
            "/oauth/token",
            {**form, "Authorization": fixture.counter_auth},
            body="grant_type=client_credentials",
            goal=0.40,
        ),
        Phase(
            "refresh",
            "POST",
            "/oauth/token",
            {**form, "Authorization": fixture.shop_auth},
            bodies=refresh_bodies,
            goal=0.20,
            follow=follow,
        ),
    ]


# The server.


def free_port() -> int:
    """A port on 127.0.0.1 that is free now."""
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def server_command(port: int, args: argparse.Namespace) -> list[str]:
    """The gunicorn command line."""
    return [
        sys.executable, "-m", "gunicorn",
        "--workers", str(args.workers),
        "--worker-class", args.worker_class,
        "--threads", str(args.threads),
        "--bind", f"{HOST}:{port}",
        "--pythonpath", f"{ROOT},{ROOT / 'bench'}",
        "--log-level", "warning",
        "app_with_hello:app",
    ]  # fmt: skip


def server_environment(config: Mapping[str, Any]) -> dict[str, str]:
    """The environment the workers build their app from (``VRM_`` variables)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("VRM_")}
    for key in ("DATA", "ISSUER", "AUDIT_SYNC", *FAST_ARGON2):
        env[f"VRM_{key}"] = str(config[key])
    return env


@contextmanager
def serving(command: list[str], env: dict[str, str], port: int) -> Iterator[int]:
    """Run gunicorn until the block ends; wait (bounded) until it answers /healthz."""
    server = subprocess.Popen(command, env=env, start_new_session=True)
    try:
        wait_until_healthy(port, server)
        yield server.pid
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def server_cpu_seconds(master: int) -> float:
    """CPU seconds (user and system) the gunicorn workers, children of ``master``, used."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # The process ended while we looked.
        if int(fields[1]) == master:
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def wait_until_healthy(port: int, server: subprocess.Popen[bytes]) -> None:
    """Return once /healthz answers 200; raise if the server dies or takes too long."""
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"gunicorn exited with status {server.returncode}")
        try:
            if fetch(port, Phase("health", "GET", "/healthz"))[0] == 200:
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"gunicorn did not answer within {STARTUP_SECONDS:.0f} s")


def fetch(port: int, phase: Phase, body: str | None = None) -> tuple[int, bytes]:
    """One request of ``phase`` on a new connection: status and body."""
    connection = http.client.HTTPConnection(HOST, port, timeout=10)
    try:
        connection.request(
            phase.method, phase.path, body or phase.body or None, dict(phase.headers)
        )
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def check_each(port: int, measured: list[Phase]) -> list[Phase]:
    """Send one request of each phase (warming the workers up) and stop on a failure.

    Returns the phases with any per-request body used here removed from their pool (and,
    for a phase that follows its answers, the answer's refresh token put at its back).
    """
    checked = []
    for phase in measured:
        status, body = fetch(port, phase, phase.bodies[0] if phase.bodies else None)
        if status != 200:
            raise RuntimeError(f"{phase.name}: {status} {body[:200]!r}")
        bodies = phase.bodies[1:]
        if phase.follow:
            bodies += (followed(phase.follow, json.loads(body)["refresh_token"]),)
        checked.append(replace(phase, bodies=bodies))
    return checked


# wrk.

WRK_SCRIPT = """
wrk.method = {method}
wrk.path = {path}
wrk.body = {body}
{headers}
local bodies_file = {bodies_file}
local leftover_file = {leftover_file}
local histogram_file = {histogram_file}
local max_requests = {max_requests}
local threads = {threads}
local follow = {follow}
local next_id = 0
local sent = 0
local every_thread = {{}}
-- Globals, so that done() can read each thread's queue with thread:get.
bodies = nil
head = 1
tail = 0
ran_dry = false

function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
  every_thread[#every_thread + 1] = thread
end

function init(args)
  if bodies_file ~= "" then
    bodies = {{}}
    local n = 0
    for line in io.lines(bodies_file) do
      if n % threads == id then
        tail = tail + 1
        bodies[tail] = line
      end
      n = n + 1
    end
    if follow == "" then max_requests = math.min(max_requests, tail) end
  end
  fixed = wrk.format()
end

function request()
  sent = sent + 1
  if sent >= max_requests then wrk.thread:stop() end
  if bodies == nil then return fixed end
  if head > tail then
    -- Every body is in flight or was refused: nothing left to send.
    ran_dry = true
    wrk.thread:stop()
    return fixed
  end
  local body = bodies[head]
  bodies[head] = nil
  head = head + 1
  return wrk.format(nil, nil, nil, body)
end

if follow ~= "" then
  function response(status, headers, body)
    if status ~= 200 then return end
    local token = string.match(body, '"refresh_token"%s*:%s*"([^"]+)"')
    if token then
      tail = tail + 1
      bodies[tail] = follow .. string.gsub(token, "[^%w%-%._~]", function(c)
        return string.format("%%%02X", string.byte(c))
      end)
    end
  end
end

function done(summary, latency, requests)
  local out = assert(io.open(histogram_file, "w"))
  for i = 1, #latency do
    local micros, count = latency(i)
    out:write(string.format("%d %d\\n", micros, count))
  end
  out:close()
  local dry = false
  if leftover_file ~= "" then
    out = assert(io.open(leftover_file, "w"))
    for _, thread in ipairs(every_thread) do
      local queue = thread:get("bodies")
      for i = thread:get("head"), thread:get("tail") do out:write(queue[i], "\\n") end
      dry = dry or thread:get("ran_dry")
    end
    out:close()
  end
  local e = summary.errors
  io.write(string.format(
    'WRK-RESULT {{"requests": %d, "duration_us": %d, "status": %d, "socket": %d, ' ..
    '"ran_dry": %s}}\\n',
    summary.requests, summary.duration, e.status,
    e.connect + e.read + e.write + e.timeout, tostring(dry)))
end
"""


def lua_string(text: str) -> str:
    """``text`` as a Lua string literal."""
    return json.dumps(text)  # JSON string escapes are valid Lua escapes for ASCII text.


def wrk_script(phase: Phase, scratch: Path, max_requests: int, threads: int) -> str:
    """The Lua script for one run: fixed requests, or one body per request (a queue that
    the answers refill, for a phase that follows them)."""
    bodies_file = leftover_file = ""
    if phase.bodies:
        bodies_file = str(scratch / "bodies.txt")
        Path(bodies_file).write_text("\n".join(phase.bodies) + "\n")
    if phase.follow:
        leftover_file = str(scratch / "leftover.txt")
    headers = "\n".join(
        f"wrk.headers[{lua_string(name)}] = {lua_string(value)}"
        for name, value in phase.headers.items()
    )
    return WRK_SCRIPT.format(
        method=lua_string(phase.method),
        path=lua_string(phase.path),
        body=lua_string(phase.body) if phase.body else "nil",
        headers=headers,
        bodies_file=lua_string(bodies_file),
        leftover_file=lua_string(leftover_file),
        histogram_file=lua_string(str(scratch / "latency.txt")),
        max_requests=max(1, max_requests // threads),
        threads=threads,
        follow=lua_string(phase.follow),
    )


def request_limit(phase: Phase, run: Run) -> int:
    """How many requests a run of ``phase`` may send: its count bound, and no more than
    its bodies unless answers refill them."""
    if phase.bodies and not phase.follow:
        return min(run.max_requests, len(phase.bodies))
    return run.max_requests


def run_wrk(phase: Phase, port: int, run: Run, scratch: Path) -> Result:
    """One wrk run of ``phase``, bounded by ``run``."""
    limit = request_limit(phase, run)
    script = scratch / "phase.lua"
    script.write_text(wrk_script(phase, scratch, limit, run.threads))
    command = [
        "wrk", f"--threads={run.threads}", f"--connections={run.connections}",
        f"--duration={run.seconds}s", "--timeout=5s", f"--script={script}",
        f"http://{HOST}:{port}{phase.path}",
    ]  # fmt: skip
    output = subprocess.run(
        command, capture_output=True, text=True, timeout=run.seconds + 30, check=True
    ).stdout
    line = next(line for line in output.splitlines() if line.startswith("WRK-RESULT "))
    found = json.loads(line.removeprefix("WRK-RESULT "))
    pairs = (line.split() for line in (scratch / "latency.txt").read_text().splitlines())
    leftover = scratch / "leftover.txt"
    return Result(
        requests=found["requests"],
        seconds=found["duration_us"] / 1e6,
        latencies={int(micros): int(count) for micros, count in pairs},
        failures=found["status"] + found["socket"],
        # A thread stops at its share of the bound, dropping what it had in flight.
        bounded_by_count=found["ran_dry"] or found["requests"] >= limit - 2 * run.connections,
        leftover=tuple(leftover.read_text().splitlines()) if phase.follow else (),
    )


# The Python fallback.


Connection = tuple[list[float], int, list[str], bool]


def _python_connection(job: tuple[Phase, int, float, Run, int]) -> Connection:
    """One keep-alive connection sending its share of ``phase`` from ``start`` (epoch
    seconds) until the run's time or count bound; its latencies (s), failures, for a phase
    that follows its answers the bodies it did not send, and whether it ran out of them."""
    phase, port, start, run, index = job
    stride = run.connections
    queue = deque(phase.bodies[index::stride]) if phase.bodies else None
    limit = -(-request_limit(phase, run) // stride)
    connection = http.client.HTTPConnection(HOST, port, timeout=10)
    latencies: list[float] = []
    failures = 0
    time.sleep(max(0.0, start - time.time()))
    dry = False
    while len(latencies) < limit and time.time() < start + run.seconds:
        if queue is not None and not queue:
            dry = True
            break
        body = queue.popleft() if queue is not None else (phase.body or None)
        began = time.perf_counter()
        connection.request(phase.method, phase.path, body, dict(phase.headers))
        response = connection.getresponse()
        answer = response.read()
        latencies.append(time.perf_counter() - began)
        failures += response.status >= 400
        if phase.follow and response.status == 200 and queue is not None:
            queue.append(followed(phase.follow, json.loads(answer)["refresh_token"]))
    connection.close()
    left = list(queue) if phase.follow and queue is not None else []
    return latencies, failures, left, dry


def run_python(phase: Phase, port: int, run: Run, scratch: Path) -> Result:
    """One run of ``phase`` with one process (and connection) per connection."""
    del scratch
    start = time.time() + 1.0
    jobs = [(phase, port, start, run, index) for index in range(run.connections)]
    with multiprocessing.get_context("fork").Pool(run.connections) as pool:
        results = pool.map(_python_connection, jobs)
    latencies = Counter(round(t * 1e6) for times, _, _, _ in results for t in times)
    requests = sum(latencies.values())
    return Result(
        requests=requests,
        seconds=min(time.time() - start, float(run.seconds)),
        latencies=latencies,
        failures=sum(failures for _, failures, _, _ in results),
        bounded_by_count=any(dry for _, _, _, dry in results)
        or requests >= request_limit(phase, run) - run.connections,
        leftover=tuple(body for _, _, left, _ in results for body in left),
    )


Generator = Callable[[Phase, int, "Run", Path], Result]


# The report.


def table(rows: list[Row]) -> str:
    """The results: each endpoint and the hello-world rounds run alternately with it."""
    header = (
        f"{'endpoint':<20}{'req/s':>8}{'p50 ms':>8}{'p99 ms':>8}{'failed':>7}{'cpu ms':>8}"
        f"{'hello req/s':>12}{'cpu ms':>8}{'ratio':>7}{'rounds':>12}{'goal':>8}  verdict"
    )
    lines = [header, "-" * len(header)]
    for row in rows:
        result, hello, ratio = row.result, row.hello, row.ratio
        goal = row.phase.goal or 0.0
        flag = "*" if result.bounded_by_count or hello.bounded_by_count else " "
        spread = row.round_ratios()
        lines.append(
            f"{row.phase.name:<20}{result.rate:>8.0f}{result.percentile(50):>8.2f}"
            f"{result.percentile(99):>8.2f}{result.failures:>7}{result.cpu_per_request:>8.2f}"
            f"{hello.rate:>12.0f}{hello.cpu_per_request:>8.2f}"
            f"{ratio:>6.0%}{flag}{f'{spread[0]:.0%}-{spread[-1]:.0%}':>12}"
            f"{'>= ' + f'{goal:.0%}':>8}  {'meets' if ratio >= goal else 'misses'}"
        )
    lines += [
        "cpu ms: CPU time of the gunicorn workers (user + system) per request; "
        "ratio: req/s over the hello-world req/s, all rounds pooled (the verdict's figure)",
        "rounds: the lowest and highest ratio of one round to the hello-world round before it",
    ]
    for row in rows:
        hello = row.hello
        lines.append(
            f"  {HELLO} beside {row.phase.name}: p50 {hello.percentile(50):.2f} ms, "
            f"p99 {hello.percentile(99):.2f} ms, {hello.failures} failed; rounds "
            + ", ".join(f"{ratio:.0%}" for ratio in row.round_ratios())
        )
    return "\n".join(lines)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=10, help="length of each phase")
    parser.add_argument("--rounds", type=int, default=5, help="hello/endpoint alternations")
    parser.add_argument("--max-requests", type=int, default=500_000, help="count bound a phase")
    parser.add_argument("--refresh-pool", type=int, default=6000, help="refresh tokens to mint")
    parser.add_argument("--mint-processes", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument(
        "--audit-sync",
        choices=("always", "none"),
        default="always",
        help="the server's VRM_AUDIT_SYNC: fsync every audit append (the default) or not",
    )
    parser.add_argument("--worker-class", default="gthread")
    parser.add_argument("--threads", type=int, default=4, help="threads per gunicorn worker")
    parser.add_argument("--connections", type=int, default=8, help="concurrent connections")
    parser.add_argument("--wrk-threads", type=int, default=1)
    parser.add_argument("--python-load", action="store_true", help="use the Python generator")
    return parser.parse_args()


@dataclass(frozen=True)
class Run:
    """The bounds and shape of one load-generator run (one round of a phase)."""

    seconds: int
    max_requests: int
    connections: int
    threads: int

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Run:
        rounds = max(1, args.rounds)
        return cls(
            seconds=max(1, args.seconds // rounds),
            max_requests=max(1, args.max_requests // rounds),
            connections=args.connections,
            threads=args.wrk_threads,
        )


def pick_generator(args: argparse.Namespace) -> Generator:
    """wrk if present (and not overridden), else the Python generator, saying why."""
    if not args.python_load and shutil.which("wrk"):
        return run_wrk
    if not args.python_load:
        print(
            "wrk is not installed: install it (Debian/Ubuntu: apt-get install -y wrk) for "
            "comparable figures. Falling back to the Python load generator.",
            file=sys.stderr,
        )
    return run_python


def metered(
    generator: Generator, phase: Phase, port: int, run: Run, scratch: Path, server: int
) -> Result:
    """One run of ``phase``, with the server CPU time it took."""
    before = server_cpu_seconds(server)
    result = generator(phase, port, run, scratch)
    return replace(result, server_cpu=server_cpu_seconds(server) - before)


def measure(
    generator: Generator,
    measured: list[Phase],
    port: int,
    run: Run,
    rounds: int,
    scratch: Path,
    server: int,
) -> list[Row]:
    """Each phase in ``rounds`` rounds, each right after a hello-world round of the same
    length, so a change in the machine's background load touches both alike."""
    hello = Phase(HELLO, "GET", "/bench/hello")
    generator(replace(hello, name="warm-up"), port, replace(run, seconds=2), scratch)
    rows = []
    for phase in measured:
        share = -(-len(phase.bodies) // rounds)
        beside: list[Result] = []
        results: list[Result] = []
        reporter = ProgressReporter(f"{phase.name} and {HELLO}, {rounds} x {run.seconds} s each")
        for number in range(rounds):
            if phase.follow:  # Each round goes on with the queue the last one left.
                bodies = results[-1].leftover if results else phase.bodies
                if len(bodies) < run.connections:
                    raise RuntimeError(
                        f"{phase.name}: {len(bodies)} tokens left for round {number + 1}, "
                        f"fewer than the {run.connections} connections (were answers refused?)"
                    )
            else:
                bodies = phase.bodies[number * share : (number + 1) * share]
            beside.append(metered(generator, hello, port, run, scratch, server))
            results.append(
                metered(generator, replace(phase, bodies=bodies), port, run, scratch, server)
            )
            reporter.update(number + 1, rounds)
        reporter.finish()
        rows.append(Row(phase, results, beside))
    return rows


def main() -> int:
    args = parse_args()
    generator = pick_generator(args)
    run = Run.from_args(args)
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="vrm-bench-") as scratch_dir:
        scratch = Path(scratch_dir)
        overrides = {"DATA": str(scratch / "vrm-data"), "ISSUER": f"http://{HOST}:{port}"}
        # Minting the fixtures is setup, not measurement: it never waits on fsync.
        setup = load_config({**overrides, **FAST_ARGON2, "AUDIT_SYNC": "none"}, environ={})
        fixture = prepare(setup, args.refresh_pool, args.mint_processes)
        config = {**setup, "AUDIT_SYNC": args.audit_sync}
        command = server_command(port, args)
        print("server: " + " ".join(command), file=sys.stderr)
        with serving(command, server_environment(config), port) as server:
            measured = check_each(port, phases(fixture))
            rows = measure(generator, measured, port, run, max(1, args.rounds), scratch, server)
    name = "wrk" if generator is run_wrk else "Python (http.client, a process a connection)"
    print(
        f"gunicorn: {args.workers} workers ({args.worker_class}, {args.threads} threads each) "
        f"on {os.cpu_count()} CPUs, shared with the load generator; "
        f"VRM_AUDIT_SYNC={args.audit_sync}\n"
        f"load: {name}, {args.connections} connections, each phase {max(1, args.rounds)} "
        f"rounds of {run.seconds} s alternating with {HELLO}; "
        f"refresh pool {len(fixture.refresh_tokens)} tokens"
    )
    print(table(rows))
    if any(row.result.bounded_by_count or row.hello.bounded_by_count for row in rows):
        print(
            "* a count bound ended a round early; wrk divides by the whole round, so with wrk "
            "that rate is a lower bound"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
