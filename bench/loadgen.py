"""Open-loop load generator, run as its own process: `python -m bench.loadgen`.

It reads one JSON spec per line on stdin and answers one JSON result per line on stdout. Each
spec is a step: Poisson arrivals at `rate` per second for `duration_s` (at most `max_requests`),
sent to 127.0.0.1 only, over a small keep-alive HTTP/1.1 client (cheap on CPU, so the generator
does not steal the server's cores). Latency runs from each request's *scheduled* send time to the
last byte of its response, so a server (or generator) that falls behind shows it in the numbers
instead of silently sending less (no coordinated omission). Requests still open `timeout_s`
after the last send are cancelled and counted as errors.

Spec fields: port (or ports: requests spread round robin over several servers), path, rate,
duration_s (or phases: [[rate, seconds], ...], one arrival process whose rate changes without a
pause, for overload and recovery), max_requests, timeout_s, seed, users ([{auth, thread_id}], used
round robin), messages (base texts, round robin), nonce (makes each message unique), connections
(keep-alive pool size per server).
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import time
from typing import Any

HOST = "127.0.0.1"
IDLE_S = 2.0  # keep-alive connections idle longer than this are not reused


class Client:
    """A pool of keep-alive HTTP/1.1 connections to one port on 127.0.0.1."""

    def __init__(self, port: int, limit: int) -> None:
        self.port = port
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter, float]] = []
        self.slots = asyncio.Semaphore(limit)

    async def _conn(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        while self.idle:
            reader, writer, since = self.idle.pop()
            if time.monotonic() - since < IDLE_S:
                return reader, writer
            writer.close()  # the server may have closed it (uvicorn's keep-alive is 5 s)
        return await asyncio.open_connection(HOST, self.port)

    async def post(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes, str | None]:
        async with self.slots:
            reader, writer = await self._conn()
            try:
                head = [
                    f"POST {path} HTTP/1.1",
                    f"Host: {HOST}:{self.port}",
                    "Content-Type: application/json",
                ]
                head += [f"{k}: {v}" for k, v in headers.items()]
                head.append(f"Content-Length: {len(body)}")
                writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)
                status, length, chunked, close, retry_after = await self._head(reader)
                if chunked:
                    payload = await self._chunked(reader)
                else:
                    payload = await reader.readexactly(length)
            except BaseException:
                writer.close()
                raise
            if close:
                writer.close()
            else:
                self.idle.append((reader, writer, time.monotonic()))
            return status, payload, retry_after

    @staticmethod
    async def _head(reader: asyncio.StreamReader) -> tuple[int, int, bool, bool, str | None]:
        raw = await reader.readuntil(b"\r\n\r\n")
        lines = raw.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        length, chunked, close, retry_after = 0, False, False, None
        for line in lines[1:]:
            name, _, value = line.partition(":")
            name, value = name.strip().lower(), value.strip().lower()
            if name == "content-length":
                length = int(value)
            elif name == "transfer-encoding" and "chunked" in value:
                chunked = True
            elif name == "connection" and value == "close":
                close = True
            elif name == "retry-after":
                retry_after = value
        return status, length, chunked, close, retry_after

    @staticmethod
    async def _chunked(reader: asyncio.StreamReader) -> bytes:
        out = bytearray()
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await reader.readuntil(b"\r\n")
                return bytes(out)
            out += await reader.readexactly(size)
            await reader.readexactly(2)

    def close(self) -> None:
        for _, writer, _ in self.idle:
            writer.close()
        self.idle.clear()


def arrivals(phases: list[tuple[float, float]], max_requests: int, rng: random.Random) -> list[float]:
    """Poisson arrival times (s) through consecutive phases of (rate, seconds)."""
    offsets: list[float] = []
    begin = 0.0
    for rate, seconds in phases:
        t = begin
        while len(offsets) < max_requests:
            t += rng.expovariate(rate)
            if t > begin + seconds:
                break
            offsets.append(t)
        begin += seconds
    return offsets


async def run_step(spec: dict[str, Any]) -> dict[str, Any]:
    phases = [(float(r), float(d)) for r, d in spec.get("phases") or [(spec["rate"], spec["duration_s"])]]
    rate = phases[0][0]
    offsets = arrivals(phases, int(spec["max_requests"]), random.Random(spec.get("seed", 0)))
    users, messages, nonce = spec["users"], spec["messages"], spec.get("nonce", "n")
    ports = [int(p) for p in spec.get("ports") or [spec["port"]]]
    clients = [Client(p, int(spec.get("connections", 256))) for p in ports]
    results: list[list[Any]] = [[o, None, 0, "", 0.0, i, None] for i, o in enumerate(offsets)]

    async def one(i: int, start: float) -> None:
        user = users[i % len(users)]
        body = {
            "message": f"{messages[i % len(messages)]} (note {nonce}-{i})",
            "thread_id": user.get("thread_id"),
        }
        headers = {"Authorization": f"Bearer {user['auth']}"} if user.get("auth") else {}
        scheduled = start + offsets[i]
        results[i][4] = (time.perf_counter() - scheduled) * 1000  # generator lag
        try:
            client = clients[i % len(clients)]
            status, payload, retry_after = await client.post(spec["path"], json.dumps(body).encode(), headers)
            results[i][2], results[i][6] = status, retry_after
            if status == 200:
                results[i][3] = json.loads(payload).get("reply", "")
            else:
                results[i][3] = payload[:200].decode("utf-8", "replace")
        except Exception as err:
            results[i][2] = -1
            results[i][3] = repr(err)[:200]
        results[i][1] = (time.perf_counter() - scheduled) * 1000

    tasks: list[asyncio.Task[None]] = []
    start = time.perf_counter() + 0.05
    for i, offset in enumerate(offsets):
        delay = start + offset - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i, start)))
    timed_out = 0
    if tasks:
        _, pending = await asyncio.wait(tasks, timeout=float(spec["timeout_s"]))
        for task in pending:
            task.cancel()
        timed_out = len(pending)
        await asyncio.gather(*pending, return_exceptions=True)
    for client in clients:
        client.close()
    for r in results:
        if r[1] is None:
            r[1], r[2], r[3] = float(spec["timeout_s"]) * 1000, -2, "timeout"
    return {
        "rate": rate,
        "sent": len(offsets),
        "timed_out": timed_out,
        "wall_s": time.perf_counter() - start,
        # [scheduled offset s, latency ms, status, reply or error, generator lag ms, index,
        #  Retry-After header or None]
        "requests": results,
    }


async def serve() -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := await reader.readline():
        if not line.strip():
            continue
        result = await run_step(json.loads(line))
        sys.stdout.write(json.dumps(result) + "\n")
        sys.stdout.flush()


def main() -> None:
    try:
        import uvloop

        uvloop.run(serve())
    except ImportError:
        asyncio.run(serve())


if __name__ == "__main__":
    main()
