"""Summarise load-tests/growth.sh: added latency vs body size and vs catalog size.

    growth_report.py RESULTS CLK_TCK RSS CHECK PLOT_DAT

RESULTS: one wrk cell a line, "NAME CONC key=value…"; RSS: "NAME KB" lines; CHECK:
`tollgate check`'s lines for both catalogs. Writes PLOT_DAT for plot/growth.gp.
"""
import math
import re
import statistics
import sys
from collections import defaultdict

path, clk_tck, rss_path, check_path, dat_path = sys.argv[1], int(sys.argv[2]), *sys.argv[3:6]
cells = defaultdict(list)
for line in open(path):
    parts = line.split()
    kv = dict(p.split("=") for p in parts[2:])
    cells[(parts[0], int(parts[1]))].append({k: float(v) for k, v in kv.items()})


def med(name, conc, key):
    return statistics.median(r[key] for r in cells[(name, conc)])


def rps(name, conc):
    return statistics.median(r["requests"] / (r["duration_us"] / 1e6) for r in cells[(name, conc)])


def cpu(name, conc):
    return statistics.median(r["cpu_ticks"] / clk_tck * 1e6 / max(r["requests"], 1) for r in cells[(name, conc)])


def sys_share(name, conc):
    r = cells[(name, conc)]
    return 100 * sum(x["sys_ticks"] for x in r) / max(sum(x["cpu_ticks"] for x in r), 1)


def faults(name, conc):
    return statistics.median(r["minflt"] / max(r["requests"], 1) for r in cells[(name, conc)])


def errors(name, conc):
    return sum(r["errors"] + r["non2xx"] for r in cells[(name, conc)])


rounds = max(len(v) for (n, _), v in cells.items() if "body" in n)
sizes = sorted({int(n[len("direct-body"):]) for n, _ in cells if n.startswith("direct-body")})
print(f"Medians of {rounds} round(s); latency in µs; added = system p − direct p; concurrency 1.\n")
print("## Body size (`model` last)\n")
print("| body | direct p50 | tollgate p50 | tollgate p99 | added p50 | added p99 | added p50 per MiB "
      "| tollgate CPU µs/req (sys %) | tollgate page faults/req | nginx added p50 | nginx added p99 | nginx CPU µs/req (sys %) "
      "| nginx page faults/req | errors |")
print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
added = {}
with open(dat_path, "w") as dat:
    dat.write("kib tollgate_p50 tollgate_p99 nginx_p50 nginx_p99\n")
    for kib in sizes:
        d, t, n = f"direct-body{kib}", f"tollgate-body{kib}", f"nginx-body{kib}"
        a50, a99 = med(t, 1, "p50") - med(d, 1, "p50"), med(t, 1, "p99") - med(d, 1, "p99")
        n50, n99 = med(n, 1, "p50") - med(d, 1, "p50"), med(n, 1, "p99") - med(d, 1, "p99")
        added[kib] = a50
        label = f"{kib // 1024} MiB" if kib >= 1024 else f"{kib} KiB"
        print(f"| {label} | {med(d, 1, 'p50'):.0f} | {med(t, 1, 'p50'):.0f} | {med(t, 1, 'p99'):.0f} | {a50:.0f} | {a99:.0f} "
              f"| {a50 / (kib / 1024):,.0f} | {cpu(t, 1):.1f} ({sys_share(t, 1):.0f} %) | {faults(t, 1):.1f} | {n50:.0f} | {n99:.0f} "
              f"| {cpu(n, 1):.1f} ({sys_share(n, 1):.0f} %) | {faults(n, 1):.1f} "
              f"| {errors(d, 1) + errors(t, 1) + errors(n, 1):.0f} |")
        clip = lambda v: f"{v:.0f}" if v > 0 else "?"  # log axes: a non-positive difference is left out
        dat.write(f"{kib} {clip(a50)} {clip(a99)} {clip(n50)} {clip(n99)}\n")

def exponent(ks, ys):
    """Slope of log(y) against log(size): 1.0 is linear growth."""
    xs, ys = [math.log(k) for k in ks], [math.log(y) for y in ys]
    mx, my = statistics.mean(xs), statistics.mean(ys)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)


big = [k for k in sizes if k >= 256 and added.get(k, 0) > 0]
if len(big) >= 2:
    slope = exponent(big, [added[k] for k in big])
    cslope = exponent(big, [cpu(f"tollgate-body{k}", 1) for k in big])
    print(f"\n- growth exponent from {big[0]} KiB to {big[-1] // 1024} MiB (log-log fit; 1.0 = linear; target ≤ 1.0, "
          f"i.e. linear or better): added p50 {slope:.2f} ({'met' if slope <= 1.05 else 'MISSED'}), "
          f"tollgate CPU/req {cslope:.2f}")
if 1024 in added and 4096 in added and added[1024] > 0:
    r = lambda f, n: f(f"{n}-body4096", 1) / max(f(f"{n}-body1024", 1), 1e-9)
    p50 = lambda n, c: med(n, c, "p50")
    print(f"- 4 MiB / 1 MiB (linear = 4.00×): tollgate added p50 {added[4096] / added[1024]:.2f}×, "
          f"tollgate CPU/req {r(cpu, 'tollgate'):.2f}×; for context, the direct path's p50 {r(p50, 'direct'):.2f}× "
          f"and nginx's CPU/req {r(cpu, 'nginx'):.2f}×")

print(f"\n## Catalog size (request for `gpt-4o`, in both; medians of {len(cells[('tollgate-catalog', 1)])} rounds, "
      "the two gateways' order swapped each round)\n")
counts = re.findall(r"with (\d+) providers and (\d+) models", open(check_path).read())
rss = {}
for line in open(rss_path):
    parts = line.split()
    if len(parts) == 2 and parts[1].isdigit():
        rss[parts[0]] = int(parts[1])
print("| catalog | models | added p50 (c=1) | added p99 (c=1) | req/s (c=64) | CPU µs/req (c=64) | idle RSS MiB | peak RSS MiB | errors |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
rows = {}
for i, (label, name, key) in enumerate((("catalog.yaml", "tollgate-catalog", "real"),
                                        (f"catalog.yaml + 10,000 models", "tollgate-catalog10k", "10k"))):
    models = counts[i][1] if i < len(counts) else "?"
    a50 = med(name, 1, "p50") - med("direct", 1, "p50")
    a99 = med(name, 1, "p99") - med("direct", 1, "p99")
    rows[key] = (a50, cpu(name, 64), rps(name, 64))
    print(f"| {label} | {models} | {a50:.0f} | {a99:.0f} | {rps(name, 64):,.0f} | {cpu(name, 64):.1f} "
          f"| {rss.get(f'catalog-{key}-idle-rss', 0) / 1024:.1f} | {rss.get(f'catalog-{key}-peak-rss', 0) / 1024:.1f} "
          f"| {errors(name, 1) + errors(name, 64):.0f} |")
(ra, rc, rr), (ka, kc, kr) = rows["real"], rows["10k"]
print(f"\n- 10k-model catalog vs real: added p50 {ka / ra:.2f}×, CPU/req at concurrency 64 {kc / rc:.2f}×, "
      f"throughput {kr / rr:.2f}× (target: flat within 10%, i.e. ≤ 1.10× added latency and CPU): "
      f"{'met' if ka / ra <= 1.10 and kc / rc <= 1.10 else 'MISSED (see the note on noise in load-tests/README.md)'}")
