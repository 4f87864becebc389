"""End to end: ``bench/app.py`` under uvicorn on 127.0.0.1, a public route against a protected one.

Method:

* one uvicorn process (one worker, its default event loop and HTTP parser, access log off),
  configured with ``CLERK_JWT_KEY``/``CLERK_ISSUER`` only, started from an empty directory;
* the load generator is ``wrk`` when it is on ``PATH`` (one thread, a Lua script that gives
  each request the next token of a list), else a loop of ``httpx.AsyncClient`` requests in
  this process; both at the same fixed concurrency, for rounds of a fixed number of seconds;
* both routes receive the same request (same headers, same token), so the only difference is
  the ``CurrentUserDep`` on the protected route;
* rounds of public and protected alternate (AB, BA, AB, ...), so slow drift of the machine
  hits both; each mode runs its own rounds; the reported ratio is the median over rounds of
  protected/public requests per second;
* repeated mode first: every request carries the same token. Its fastest protected round
  bounds how many requests a round can make, which sizes the distinct tokens (+30%); they are
  minted then, while the server idles. In distinct mode each protected request carries a
  token the server has never seen; a round that ran out of tokens invalidates the mode;
* any non-2xx answer or socket error invalidates the figure (a fast 401 is not a result);
* the server's own CPU time per request (utime + stime of the uvicorn process, from
  ``/proc/<pid>/stat``) is reported too. When the public route did not keep the server's core
  80% busy, the load generator was the bottleneck (the httpx loop is, on small machines) and
  req/s would compare the client with itself; the ratio is then public/protected server CPU
  per request, and the table says so.
"""

from __future__ import annotations

import asyncio
import math
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

import httpx

BENCH_DIR = Path(__file__).resolve().parent

WRK_SCRIPT = """\
local tokens = {}
for line in io.lines(os.getenv("BENCH_TOKENS")) do tokens[#tokens + 1] = line end
local path = os.getenv("BENCH_PATH")
local threads = {}
sent = 0

setup = function(thread)
  threads[#threads + 1] = thread
end

request = function()
  sent = sent + 1
  local token = tokens[((sent - 1) % #tokens) + 1]
  return wrk.format("GET", path, {["Authorization"] = "Bearer " .. token})
end

done = function(summary, latency, requests)
  local e = summary.errors
  local most = 0
  for _, thread in ipairs(threads) do most = math.max(most, thread:get("sent")) end
  io.write(string.format(
    "BENCH requests=%d duration_us=%d status=%d connect=%d read=%d write=%d timeout=%d "
    .. "wrapped=%d\\n",
    summary.requests, summary.duration, e.status, e.connect, e.read, e.write, e.timeout,
    most > #tokens and 1 or 0))
end
"""

_WRK_LINE = re.compile(
    r"BENCH requests=(\d+) duration_us=(\d+) status=(\d+) connect=(\d+) read=(\d+) "
    r"write=(\d+) timeout=(\d+) wrapped=(\d)"
)


@dataclass(frozen=True)
class Round:
    route: str
    requests: int
    seconds: float
    failures: int  # non-2xx answers and socket errors
    wrapped: bool  # the token list ran out, so some tokens were sent twice
    server_cpu: float | None = None  # seconds of CPU the server used during the round

    @property
    def rps(self) -> float:
        return self.requests / self.seconds


@dataclass
class ModeResult:
    mode: str  # "distinct" or "repeated"
    rounds: list[Round] = field(default_factory=list)

    def _of(self, route: str) -> list[Round]:
        return [r for r in self.rounds if r.route == route]

    def rps(self, route: str) -> float:
        return statistics.median(r.rps for r in self._of(route))

    def ratio(self) -> float:
        """Median over round pairs of protected/public requests per second."""
        pairs = zip(self._of("public"), self._of("protected"), strict=True)
        return statistics.median(b.rps / a.rps for a, b in pairs)

    def utilization(self, route: str) -> float | None:
        """Cores the server kept busy during this route's rounds (None without /proc)."""
        rounds = self._of(route)
        if any(r.server_cpu is None for r in rounds):
            return None
        return sum(r.server_cpu or 0.0 for r in rounds) / sum(r.seconds for r in rounds)

    def client_bound(self) -> bool:
        """The load generator, not the server, limited the rate: the public route did not keep
        the server's core 80% busy. Then req/s compares the client with itself, and the
        server's CPU per request is the measure of what authentication costs."""
        busy = self.utilization("public")
        return busy is not None and busy < 0.8

    def cpu_ratio(self) -> float | None:
        """public/protected CPU per request: the protected route's share of the public
        route's throughput when the server's core is the limit."""
        public, protected = self.cpu_us_per_request("public"), self.cpu_us_per_request("protected")
        return None if public is None or protected is None else public / protected

    def problems(self) -> str:
        """Why the figures of this mode are not valid, or ''."""
        failures = sum(r.failures for r in self.rounds)
        if failures:
            return f"{failures} failed requests"
        if self.mode == "distinct" and any(r.wrapped for r in self._of("protected")):
            return "ran out of distinct tokens"
        return ""

    def cpu_us_per_request(self, route: str) -> float | None:
        rounds = self._of(route)
        if any(r.server_cpu is None for r in rounds):
            return None
        return sum(r.server_cpu or 0.0 for r in rounds) / sum(r.requests for r in rounds) * 1e6


@dataclass
class E2EResult:
    generator: str
    concurrency: int
    round_seconds: float
    modes: dict[str, ModeResult]
    distinct_tokens: int = 0


def parse_wrk_output(output: str) -> tuple[int, float, int, bool]:
    """(responses, seconds, failures, wrapped) from the line the Lua ``done`` hook prints."""
    match = _WRK_LINE.search(output)
    if match is None:
        raise RuntimeError(f"unexpected wrk output: {output[-500:]!r}")
    requests, duration_us, *errors, wrapped = (int(group) for group in match.groups())
    return requests, duration_us / 1e6, sum(errors), bool(wrapped)


# -- the server --------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _cpu_seconds(pid: int) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Server:
    base_url: str
    process: subprocess.Popen[bytes]

    def cpu(self) -> float | None:
        return _cpu_seconds(self.process.pid)


@contextmanager
def serve_app(jwt_key: str, issuer: str) -> Iterator[Server]:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("CLERK_")}
    env.update(CLERK_JWT_KEY=jwt_key, CLERK_ISSUER=issuer, PYTHONDONTWRITEBYTECODE="1")
    command = [
        sys.executable, "-m", "uvicorn", "app:app", "--app-dir", str(BENCH_DIR),
        "--host", "127.0.0.1", "--port", str(port), "--no-access-log", "--log-level", "warning",
    ]  # fmt: skip
    with tempfile.TemporaryDirectory() as empty:
        process = subprocess.Popen(command, cwd=empty, env=env)
        try:
            base_url = f"http://127.0.0.1:{port}"
            _wait_ready(base_url, process)
            yield Server(base_url, process)
        finally:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_ready(base_url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the bench server exited with code {process.returncode}")
        try:
            if httpx.get(f"{base_url}/public", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError("the bench server did not start within 30 s")


# -- load generators: each runs one route for a fixed time ------------------------------


class WrkGenerator:
    name = "wrk"

    def __init__(self, workdir: Path, concurrency: int) -> None:
        self.concurrency = concurrency
        self.workdir = workdir
        self.script = workdir / "tokens.lua"
        self.script.write_text(WRK_SCRIPT)

    def run(self, base_url: str, path: str, tokens: Sequence[str], seconds: int) -> Round:
        token_file = self.workdir / "tokens.txt"
        token_file.write_text("\n".join(tokens) + "\n")
        env = dict(os.environ, BENCH_TOKENS=str(token_file), BENCH_PATH=path)
        command = [
            "wrk", "-t1", f"-c{self.concurrency}", f"-d{seconds}s", "--timeout", "10s",
            "-s", str(self.script), base_url,
        ]  # fmt: skip
        output = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
        done, elapsed, failures, wrapped = parse_wrk_output(output.stdout)
        return Round(path.strip("/"), done, elapsed, failures, wrapped)


class HttpxGenerator:
    name = "httpx"

    def __init__(self, concurrency: int) -> None:
        self.concurrency = concurrency

    def run(self, base_url: str, path: str, tokens: Sequence[str], seconds: int) -> Round:
        return asyncio.run(self._run(base_url, path, tokens, seconds))

    async def _run(self, base_url: str, path: str, tokens: Sequence[str], seconds: int) -> Round:
        limits = httpx.Limits(
            max_connections=self.concurrency, max_keepalive_connections=self.concurrency
        )
        headers = [{"Authorization": f"Bearer {token}"} for token in tokens]
        sent = done = failures = 0

        async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=10) as client:
            # open the connections before the clock starts
            await asyncio.gather(*(client.get("/public") for _ in range(self.concurrency)))
            deadline = time.perf_counter() + seconds

            async def worker() -> None:
                nonlocal sent, done, failures
                while time.perf_counter() < deadline:
                    index = sent
                    sent += 1
                    try:
                        response = await client.get(path, headers=headers[index % len(headers)])
                        if not 200 <= response.status_code < 300:
                            failures += 1
                    except httpx.HTTPError:
                        failures += 1
                    done += 1

            start = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(self.concurrency)))
            elapsed = time.perf_counter() - start
        return Round(path.strip("/"), done, elapsed, failures, sent > len(tokens))


Generator = WrkGenerator | HttpxGenerator


def make_generator(workdir: Path, concurrency: int, prefer_wrk: bool = True) -> Generator:
    if prefer_wrk and shutil.which("wrk"):
        return WrkGenerator(workdir, concurrency)
    return HttpxGenerator(concurrency)


# -- rounds ------------------------------------------------------------------------------


def _timed_round(
    generator: Generator, server: Server, path: str, tokens: Sequence[str], seconds: int
) -> Round:
    cpu_before = server.cpu()
    result = generator.run(server.base_url, path, tokens, seconds)
    cpu_after = server.cpu()
    cpu = None if cpu_before is None or cpu_after is None else cpu_after - cpu_before
    return replace(result, server_cpu=cpu)


def _interleaved(
    generator: Generator, server: Server, mode: str, rounds: int, seconds: int,
    tokens_for_round: Callable[[int], Sequence[str]],
) -> ModeResult:  # fmt: skip
    result = ModeResult(mode)
    for index in range(rounds):
        tokens = tokens_for_round(index)
        order = ("/public", "/protected") if index % 2 == 0 else ("/protected", "/public")
        for path in order:
            result.rounds.append(_timed_round(generator, server, path, tokens, seconds))
    return result


def tokens_per_round(top_rps: float, seconds: int, concurrency: int) -> int:
    """Distinct tokens one protected round may use: its rate with a repeated token (an upper
    bound: a cached token is the fastest case) for the round's length, plus 30% margin."""
    return math.ceil(top_rps * seconds * 1.3) + concurrency


def run_e2e(
    jwt_key: str,
    issuer: str,
    repeated_token: str,
    mint: Callable[[int], Sequence[str]],
    *,
    rounds: int,
    seconds: int,
    concurrency: int,
    prefer_wrk: bool = True,
) -> E2EResult:
    """Interleaved rounds, first with ``repeated_token``, then with distinct tokens.

    The repeated-token rounds tell how fast the protected route can go, which sizes the
    distinct tokens: ``mint(count)`` is called once, between the two modes, while the
    server is idle.
    """
    with tempfile.TemporaryDirectory() as workdir, serve_app(jwt_key, issuer) as server:
        generator = make_generator(Path(workdir), concurrency, prefer_wrk)
        for path in ("/public", "/protected"):  # warm up: imports, first-call caches
            _timed_round(generator, server, path, [repeated_token], 1)
        repeated = _interleaved(
            generator, server, "repeated", rounds, seconds, lambda _: [repeated_token]
        )
        top = max(r.rps for r in repeated.rounds if r.route == "protected")
        per_round = tokens_per_round(top, seconds, concurrency)
        distinct_tokens = mint(per_round * rounds)
        distinct = _interleaved(
            generator, server, "distinct", rounds, seconds,
            lambda i: distinct_tokens[i * per_round : (i + 1) * per_round],
        )  # fmt: skip
        modes = {"distinct": distinct, "repeated": repeated}
        return E2EResult(generator.name, concurrency, seconds, modes, len(distinct_tokens))
