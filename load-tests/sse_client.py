"""SSE load client (stdlib asyncio, raw HTTP/1.1 sockets): what wrk cannot measure.

    sse_client.py latency --port P [--key K] [--model M] --conc C --duration S --chunks N
        C keep-alive connections each run streams back to back for S seconds; per
        stream: time to first byte (the status line), time to the first content
        chunk, total time (the last byte of the body), and whether the stream came
        through intact. Prints one RESULT line of percentiles in µs.

    sse_client.py hold --port P [--key K] --streams N --chunks C --pid PID
        Opens N streams at once (one connection each, spread over source addresses
        127.0.0.2-127.0.0.5), and once every one of them has its first content chunk
        (and none has ended) reads PID's VmRSS; keeps reading it until the first
        stream ends. Then waits for all and checks each. Prints one RESULT line.

    sse_client.py idle --port P --streams N --pid PID
        Opens N connections that send nothing and reports PID's VmRSS growth per
        connection.

A stream is intact when its status is 200, its body is well-formed (chunked or to
the connection's close), it carries exactly N content chunks and its last event is
`data: [DONE]`.
"""
import argparse
import asyncio
import re
import sys
import time

CONTENT = re.compile(rb'"content":"[^"]')


def request(args, close=False):
    body = ('{"messages":[{"role":"user","content":"hello"}],"model":"%s","stream":true}' % args.model).encode()
    head = (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:{args.port}\r\n"
        f"Authorization: Bearer {args.key}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n" + ("Connection: close\r\n" if close else "") + "\r\n"
    )
    return head.encode() + body


def check_events(body, chunks):
    """'' when the SSE body has `chunks` content chunks and ends with [DONE], else why not."""
    events = [e for e in body.replace(b"\r\n", b"\n").split(b"\n\n") if e.strip()]
    if not events or events[-1].strip() != b"data: [DONE]":
        return "no-done"
    n = sum(1 for e in events if CONTENT.search(e))
    return "" if n == chunks else f"chunks={n}"


def dechunk(raw):
    """Body of a chunked message (raw starts after the header); raises on a bad or cut one."""
    out, i = [], 0
    while True:
        j = raw.index(b"\r\n", i)
        size = int(raw[i:j].split(b";")[0], 16)
        if size == 0:
            return b"".join(out)
        out.append(raw[j + 2:j + 2 + size])
        if len(raw) < j + 4 + size:
            raise ValueError("cut")
        i = j + 4 + size


def pct(xs, p):
    if not xs:
        return 0
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


# ---------------------------------------------------------------- latency
async def one_stream(reader, writer, req, chunks):
    """(ttfb, first chunk, total) in ns, reusable connection?; raises on a broken stream."""
    t0 = time.perf_counter_ns()
    writer.write(req)
    status = await reader.readline()
    t_byte = time.perf_counter_ns()
    if not status.startswith(b"HTTP/1.1 200"):
        raise ValueError("status " + status[:12].decode(errors="replace"))
    chunked, length, keep = False, None, True
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b""):
            break
        k, _, v = line.decode("latin-1").partition(":")
        k, v = k.strip().lower(), v.strip().lower()
        if k == "transfer-encoding" and "chunked" in v:
            chunked = True
        elif k == "content-length":
            length = int(v)
        elif k == "connection" and v == "close":
            keep = False
    body, t_first = bytearray(), None
    if chunked:
        while True:
            size = int((await reader.readline()).split(b";")[0], 16)
            if size == 0:
                await reader.readline()
                break
            body += await reader.readexactly(size)
            await reader.readexactly(2)
            if t_first is None and CONTENT.search(body):
                t_first = time.perf_counter_ns()
    elif length is not None:
        while len(body) < length:
            got = await reader.read(length - len(body))
            if not got:
                raise ValueError("cut")
            body += got
            if t_first is None and CONTENT.search(body):
                t_first = time.perf_counter_ns()
    else:
        keep = False
        while got := await reader.read(65536):
            body += got
            if t_first is None and CONTENT.search(body):
                t_first = time.perf_counter_ns()
    t_end = time.perf_counter_ns()
    why = check_events(bytes(body), chunks)
    if why:
        raise ValueError(why)
    return (t_byte - t0, (t_first or t_end) - t0, t_end - t0), keep


async def latency_worker(args, req, deadline, out, errors):
    conn = None
    while time.monotonic() < deadline:
        try:
            if conn is None:
                conn = await asyncio.open_connection("127.0.0.1", args.port)
            times, keep = await asyncio.wait_for(one_stream(*conn, req, args.chunks), args.timeout)
            out.append(times)
            if not keep:
                conn[1].close()
                conn = None
        except (OSError, ValueError, asyncio.TimeoutError, asyncio.IncompleteReadError) as e:
            why = f"{type(e).__name__}:{str(e)[:20]}"
            errors[why] = errors.get(why, 0) + 1
            if conn:
                conn[1].close()
            conn = None
    if conn:
        conn[1].close()


async def latency(args):
    req = request(args)
    deadline = time.monotonic() + args.duration
    out, errors = [], {}
    t0 = time.monotonic()
    await asyncio.gather(*(latency_worker(args, req, deadline, out, errors) for _ in range(args.conc)))
    secs = time.monotonic() - t0
    cols = {"ttfb": 0, "first": 1, "total": 2}
    fields = [f"streams={len(out)}", f"duration_us={secs * 1e6:.0f}", f"errors={sum(errors.values())}"]
    for name, i in cols.items():
        xs = [t[i] / 1000 for t in out]
        fields += [f"{name}_p{p}={pct(xs, p):.0f}" for p in (50, 90, 99)]
    print("RESULT " + " ".join(fields))
    if errors:
        print("errors: " + ", ".join(f"{k} ×{v}" for k, v in sorted(errors.items())), file=sys.stderr)


# ---------------------------------------------------------------- hold
class Held(asyncio.Protocol):
    def __init__(self, state, req):
        self.state, self.req, self.buf = state, req, []
        self.first = self.closed = self.timed_out = False

    def connection_made(self, transport):
        self.transport = transport
        transport.write(self.req)

    def data_received(self, data):
        self.buf.append(data)
        if not self.first and (CONTENT.search(data) or len(self.buf) > 1 and CONTENT.search(b"".join(self.buf))):
            self.first = True
            self.state["open"] += 1
            self.state["changed"].set()

    def connection_lost(self, exc):
        self.closed = True
        self.state["ended"] += 1
        self.state["ended_open"] += self.first
        self.state["changed"].set()

    def verdict(self, chunks):
        if self.timed_out:
            return "timeout"
        raw = b"".join(self.buf)
        head, sep, rest = raw.partition(b"\r\n\r\n")
        if not sep:
            return "no-header" if raw else "no-answer"
        if not head.startswith(b"HTTP/1.1 200"):
            return "status-" + head[9:12].decode(errors="replace")
        try:
            body = dechunk(rest) if b"transfer-encoding: chunked" in head.lower() else rest
        except (ValueError, IndexError):
            return "cut"
        return check_events(body, chunks)


def vm_rss_kb(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


async def hold(args):
    loop = asyncio.get_running_loop()
    state = {"open": 0, "ended": 0, "ended_open": 0, "changed": asyncio.Event()}
    req = request(args, close=True)
    gate = asyncio.Semaphore(args.connect_parallel)
    conns, connect_errors = [], {}
    t0 = time.monotonic()

    async def connect(i):
        async with gate:
            src = f"127.0.0.{2 + i % args.sources}"
            try:
                _, proto = await loop.create_connection(
                    lambda: Held(state, req), "127.0.0.1", args.port, local_addr=(src, 0))
                conns.append(proto)
            except OSError as e:
                connect_errors[e.strerror or str(e)] = connect_errors.get(e.strerror or str(e), 0) + 1
                state["ended"] += 1

    connecting = asyncio.gather(*(connect(i) for i in range(args.streams)))
    deadline = t0 + args.timeout
    peak, all_open_at, rss = 0, None, []
    while time.monotonic() < deadline:
        state["changed"].clear()
        peak = max(peak, state["open"] - state["ended_open"])
        if all_open_at is None and state["open"] == args.streams and state["ended"] == 0:
            all_open_at = time.monotonic() - t0
        if all_open_at is not None and state["ended"] == 0:
            rss.append(vm_rss_kb(args.pid))
        if state["ended"] >= args.streams:
            break
        try:
            await asyncio.wait_for(state["changed"].wait(), 0.5 if all_open_at is not None else 0.05)
        except asyncio.TimeoutError:
            pass
    await connecting
    for c in conns:
        if not c.closed:
            c.timed_out = True
            c.transport.abort()
    verdicts = {}
    for c in conns:
        v = c.verdict(args.chunks)
        if v:
            verdicts[v] = verdicts.get(v, 0) + 1
    for k, v in connect_errors.items():
        verdicts["connect:" + k] = v
    broken = sum(verdicts.values())
    print(f"RESULT streams={args.streams} intact={args.streams - broken} broken={broken} "
          f"peak_open={peak} all_open_s={all_open_at if all_open_at is not None else -1:.1f} "
          f"rss_all_open_kb={rss[0] if rss else 0} rss_held_max_kb={max(rss) if rss else 0} "
          f"rss_samples={len(rss)} elapsed_s={time.monotonic() - t0:.1f}")
    if verdicts:
        print("broken: " + ", ".join(f"{k} ×{v}" for k, v in sorted(verdicts.items())))


# ---------------------------------------------------------------- idle
async def idle(args):
    """RSS of PID per accepted connection that has sent nothing yet."""
    before = vm_rss_kb(args.pid)
    conns = []
    for i in range(args.streams):
        conns.append(await asyncio.open_connection("127.0.0.1", args.port,
                                                   local_addr=(f"127.0.0.{2 + i % args.sources}", 0)))
    await asyncio.sleep(1)
    after = vm_rss_kb(args.pid)
    for _, w in conns:
        w.close()
    print(f"RESULT conns={len(conns)} rss_before_kb={before} rss_after_kb={after} "
          f"per_conn_kib={(after - before) / max(len(conns), 1):.1f}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode", choices=["latency", "hold", "idle"])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--key", default="tg-bench-key")
    ap.add_argument("--model", default="gpt-4o")
    ap.add_argument("--chunks", type=int, required=True, help="content chunks each stream must carry")
    ap.add_argument("--conc", type=int, default=1)
    ap.add_argument("--duration", type=float, default=2.0)
    ap.add_argument("--timeout", type=float, default=30.0, help="per stream (latency) or in all (hold), s")
    ap.add_argument("--streams", type=int, default=1000)
    ap.add_argument("--pid", type=int, default=0)
    ap.add_argument("--sources", type=int, default=4)
    ap.add_argument("--connect-parallel", type=int, default=256)
    args = ap.parse_args()
    asyncio.run({"latency": latency, "hold": hold, "idle": idle}[args.mode](args))


if __name__ == "__main__":
    main()
