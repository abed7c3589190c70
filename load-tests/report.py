"""Summarise load-tests/run.sh results: medians over rounds, added latency vs direct.

    report.py RESULTS CLK_TCK [--sse SSE20] [--rss RSS] [--plot-dir DIR]

RESULTS and SSE20 hold one cell a line, "NAME CONC key=value…" (wrk's RESULT line or
sse_client.py's, plus the proxy's cpu_ticks); RSS holds "NAME KB" (VmHWM). With
--plot-dir, writes latency.dat and sse.dat there for plot/bars.gp.
"""
import argparse
import statistics
from collections import defaultdict

ap = argparse.ArgumentParser()
ap.add_argument("results")
ap.add_argument("clk_tck", type=int)
ap.add_argument("--sse")
ap.add_argument("--rss")
ap.add_argument("--plot-dir")
args = ap.parse_args()
clk_tck = args.clk_tck


def load(path):
    cells = defaultdict(list)
    for line in open(path):
        parts = line.split()
        if len(parts) < 3:
            continue
        kv = dict(p.split("=") for p in parts[2:])
        cells[(parts[0], int(parts[1]))].append({k: float(v) for k, v in kv.items()})
    return cells


def order(cells):
    names = []
    for name, _ in cells:
        if name not in names:
            names.append(name)
    return names, sorted({c for _, c in cells})


cells = load(args.results)


def med(name, conc, key, cs=cells):
    return statistics.median(r[key] for r in cs[(name, conc)])


def rps(name, conc, count="requests", cs=cells):
    return statistics.median(r[count] / (r["duration_us"] / 1e6) for r in cs[(name, conc)])


def cpu_us_per_req(name, conc, count="requests", cs=cells):
    return statistics.median(r["cpu_ticks"] / clk_tck * 1e6 / max(r[count], 1) for r in cs[(name, conc)])


rounds = max(len(v) for v in cells.values())
print(f"Medians of {rounds} round(s); latency in µs; added = system p - direct p.\n")
print("| system | conc | req/s | p50 | p90 | p99 | p99.9 | added p50 | added p99 | CPU µs/req | errors |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
names, concs = order(cells)
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
for conc in concs:
    if ("litellm", conc) in cells and ("tollgate", conc) in cells:
        print(f"- concurrency {conc}: LiteLLM (for context) throughput {rps('litellm', conc):,.0f} req/s = "
              f"{rps('litellm', conc) / rps('tollgate', conc):.3f}× tollgate's, CPU/req "
              f"{cpu_us_per_req('litellm', conc) / max(cpu_us_per_req('tollgate', conc), 1e-9):.0f}× tollgate's")

SYSTEMS = ("direct", "nginx", "tollgate", "litellm")
plot_dir = args.plot_dir


def write_dat(path, blocks, rows, systems, value):
    """One block per panel: a header of system names, then a row per x (concurrency)."""
    with open(path, "w") as f:
        for b in blocks:
            f.write("conc " + " ".join(systems) + "\n")
            for x in rows:
                f.write(f"{x} " + " ".join(value(s, x, b) for s in systems) + "\n")
            f.write("\n\n")


if plot_dir:
    systems = [s for s in SYSTEMS if any((s, c) in cells for c in concs)]
    plain = sorted({c for s, c in cells if s in systems})
    write_dat(f"{plot_dir}/latency.dat", ("p50", "p90", "p99"), plain, systems,
              lambda s, c, k: f"{med(s, c, k):.0f}" if (s, c) in cells else "?")

if args.sse:
    sse = load(args.sse)
    sse_names, sse_concs = order(sse)
    print("\nSSE streams of 20 content chunks 5 ms apart (sse_client.py; medians; µs): TTFB = first byte"
          " of the answer, first = first content chunk, total = last byte; added = system − direct.\n")
    print("| system | conc | streams/s | TTFB p50 | TTFB p99 | first p50 | first p99 | total p50 | total p99 "
          "| added TTFB p50 | added TTFB p99 | added total p50 | added total p99 | CPU µs/stream | broken |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for conc in sse_concs:
        for name in sse_names:
            if (name, conc) not in sse:
                continue
            m = lambda k: med(name, conc, k, sse)
            added = lambda k: m(k) - med("direct", conc, k, sse) if ("direct", conc) in sse else float("nan")
            ticks = sum(r["cpu_ticks"] for r in sse[(name, conc)])
            # CPU time comes in 1/CLK_TCK ticks: under 5 of them, say so rather than print noise.
            cpu = "" if name == "direct" else (f"{cpu_us_per_req(name, conc, 'streams', sse):.0f}" if ticks >= 5 else "< 5 ticks")
            errs = sum(r["errors"] for r in sse[(name, conc)])
            print(f"| {name} | {conc} | {rps(name, conc, 'streams', sse):,.0f} | {m('ttfb_p50'):.0f} | {m('ttfb_p99'):.0f} "
                  f"| {m('first_p50'):.0f} | {m('first_p99'):.0f} | {m('total_p50'):.0f} | {m('total_p99'):.0f} "
                  f"| {added('ttfb_p50'):.0f} | {added('ttfb_p99'):.0f} | {added('total_p50'):.0f} | {added('total_p99'):.0f} "
                  f"| {cpu} | {errs:.0f} |")
    if plot_dir:
        systems = [s for s in SYSTEMS if any((s, c) in sse for c in sse_concs)]
        write_dat(f"{plot_dir}/sse.dat", ("ttfb_p50", "ttfb_p99", "total_p50", "total_p99"), sse_concs, systems,
                  lambda s, c, k: f"{med(s, c, k, sse):.0f}" if (s, c) in sse else "?")

if args.rss:
    print("\nPeak resident set of each proxy over the whole run (VmHWM from /proc/PID/status at the end):\n")
    print("| process | peak RSS MiB |")
    print("|---|---:|")
    for line in open(args.rss):
        parts = line.split()
        if len(parts) == 2:
            print(f"| {parts[0]} | {int(parts[1]) / 1024:.1f} |")
