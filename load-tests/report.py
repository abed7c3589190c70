"""Summarise load-tests/run.sh results: medians over rounds, added latency vs direct."""
import statistics
import sys
from collections import defaultdict

path, clk_tck = sys.argv[1], int(sys.argv[2])
cells = defaultdict(list)
for line in open(path):
    parts = line.split()
    name, conc = parts[0], int(parts[1])
    kv = dict(p.split("=") for p in parts[2:])
    cells[(name, conc)].append({k: float(v) for k, v in kv.items()})


def med(name, conc, key):
    return statistics.median(r[key] for r in cells[(name, conc)])


def rps(name, conc):
    return statistics.median(r["requests"] / (r["duration_us"] / 1e6) for r in cells[(name, conc)])


def cpu_us_per_req(name, conc):
    return statistics.median(r["cpu_ticks"] / clk_tck * 1e6 / max(r["requests"], 1) for r in cells[(name, conc)])


rounds = max(len(v) for v in cells.values())
print(f"Medians of {rounds} round(s); latency in µs; added = system p - direct p.\n")
print("| system | conc | req/s | p50 | p90 | p99 | p99.9 | added p50 | added p99 | CPU µs/req | errors |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
names = []
for name, _ in cells:
    if name not in names:
        names.append(name)
concs = sorted({c for _, c in cells})
for conc in concs:
    for name in names:
        if (name, conc) not in cells:
            continue
        base = next((f"direct-{sfx}" for sfx in ("1MiB", "sse") if name.endswith(sfx)), "direct")
        added = lambda k: med(name, conc, k) - med(base, conc, k)
        cpu = "" if name.startswith("direct") else f"{cpu_us_per_req(name, conc):.1f}"
        errs = sum(r["errors"] + r["non2xx"] for r in cells[(name, conc)])
        print(
            f"| {name} | {conc} | {rps(name, conc):,.0f} | {med(name, conc, 'p50'):.0f} | {med(name, conc, 'p90'):.0f} "
            f"| {med(name, conc, 'p99'):.0f} | {med(name, conc, 'p999'):.0f} | {added('p50'):.0f} | {added('p99'):.0f} | {cpu} | {errs:.0f} |"
        )

print()
for suffix in ("", "-sse"):
    on, off = ("tollgate" + suffix, 64), ("tollgate-noacct" + suffix, 64)
    if on in cells and off in cells:
        print(f"- accounting on/off CPU/req at concurrency 64{' (SSE)' if suffix else ''}: "
              f"{cpu_us_per_req(*on) / max(cpu_us_per_req(*off), 1e-9):.3f}×")
if ("tollgate-limits", 64) in cells and ("tollgate-nolimits", 64) in cells:
    print(f"- rate limits on/off CPU/req at concurrency 64: "
          f"{cpu_us_per_req('tollgate-limits', 64) / max(cpu_us_per_req('tollgate-nolimits', 64), 1e-9):.3f}× in process"
          + (f", {cpu_us_per_req('tollgate-limits-redis', 64) / max(cpu_us_per_req('tollgate-nolimits', 64), 1e-9):.3f}× shared through Redis"
             if ("tollgate-limits-redis", 64) in cells else ""))
if ("tollgate-429key", 64) in cells and ("tollgate-healthy", 64) in cells:
    print(f"- one of two keys answering 429, concurrency 64: throughput "
          f"{rps('tollgate-429key', 64) / rps('tollgate-healthy', 64):.2f}× the all-healthy gateway's")
for conc in concs:
    if ("nginx", conc) in cells and ("tollgate", conc) in cells:
        t, n = rps("tollgate", conc), rps("nginx", conc)
        ta = med("tollgate", conc, "p50") - med("direct", conc, "p50")
        na = med("nginx", conc, "p50") - med("direct", conc, "p50")
        t99 = med("tollgate", conc, "p99") - med("direct", conc, "p99")
        n99 = med("nginx", conc, "p99") - med("direct", conc, "p99")
        ratio = lambda a, b: f"{a / b:.2f}×" if b > 0 else "n/a"
        acct = ""
        if ("tollgate-noacct", conc) in cells:
            on, off = cpu_us_per_req("tollgate", conc), cpu_us_per_req("tollgate-noacct", conc)
            acct = f", accounting on/off CPU/req {on / max(off, 1e-9):.2f}×"
        print(
            f"- concurrency {conc}: tollgate/nginx throughput {t / n:.2f}×, added p50 {ratio(ta, na)}, "
            f"added p99 {ratio(t99, n99)}, CPU/req {cpu_us_per_req('tollgate', conc) / max(cpu_us_per_req('nginx', conc), 1e-9):.2f}×{acct}"
        )
