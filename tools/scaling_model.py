#!/usr/bin/env python3
"""A measured model of how mslr fit scales, projected to machines larger than this one.

    scaling_model.py [--results BENCH/results.csv] [--workloads "small medium"] [--ranks 8,64,512,1024]
                     [--alpha-us 5,10] [--gbs 12.5] [--out FOLDER]

A step is each rank's compute on its subjects, then ONE all-reduce of the shared gradient (float64, plus two
flags), so t_step(P) = t_compute(P) + t_allreduce(P). What goes in, and where it comes from:

- t_compute: the seconds per step of 1 rank x 1 thread from tools/bench_fit.sh (its results.csv, with the
  data files beside it; run here with --rounds 1 --no-reference when --results is not given), spread over the
  ranks in proportion to the most loaded rank's cost, where the cost of every subject is samples x variables
  and the ranks' loads come from mslr's own placement (mslr_bench_comm placement). Subject sizes are drawn from
  the workload's own range of neurons.
- t_allreduce: alpha + beta * bytes fitted to mslr's all-reduce timed by mslr_bench_comm (1 to 64 KiB) on 2
  ranks here (shared memory) and on 2 namespace nodes over TCP (tools/netns_nodes.py, when it can be made);
  for the projection, a tree all-reduce on the stated interconnect (NCCL's tree on InfiniBand: 2 log2(P)
  latencies of --alpha-us each and 2 x bytes at --gbs GB/s).
- Weak scaling: every rank holds as many subjects as the workload has, drawn from its sizes; efficiency = the
  compute time of the mean load / t(P). Strong scaling: a fixed population of 1024 subjects from the same
  sizes; efficiency = t(1) / (P t(P)).

Prints the fits, the 2-rank prediction against the 2-rank efficiency bench_fit.sh measured, and a table of
projected efficiencies; writes FOLDER/scaling_model.png and FOLDER/scaling_model.csv.
"""
import argparse
import csv
import math
import os
import subprocess
import sys
import tempfile

import h5py
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
           OMPI_MCA_rmaps_base_oversubscribe="1", OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
BATCHES = 10         # bench_fit.sh's minibatches per epoch
HIDDEN = [32, 32]    # and its predictor MLPs
POPULATION = 1024    # subjects of the strong-scaling study


def run(cmd):
    p = subprocess.run(cmd, env=ENV, capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemExit(f"scaling_model.py: {' '.join(cmd)} failed:\n{p.stdout}{p.stderr}")
    return p.stdout


def fit_alpha_beta(lines):
    """alpha (s) and beta (s/byte) from "bytes,seconds" lines, fitted over 1 to 64 KiB."""
    rows = [tuple(map(float, line.split(","))) for line in lines.strip().splitlines()[1:]]
    rows = [(b, s) for b, s in rows if b <= 65536]
    x = np.array([b for b, _ in rows])
    y = np.array([s for _, s in rows])
    beta, alpha = np.polyfit(x, y, 1)
    return max(alpha, 0.0), max(beta, 0.0)


def measure_allreduce(build):
    bench = os.path.join(build, "tests", "mslr_bench_comm")
    out = {"2 ranks, shared memory": fit_alpha_beta(run(["mpirun", "-np", "2", bench, "allreduce", "300"]))}
    sys.path.insert(0, HERE)
    import netns_nodes
    with tempfile.TemporaryDirectory() as d:
        try:
            with netns_nodes.Nodes(d) as nodes:
                out["2 nodes, TCP"] = fit_alpha_beta(run(nodes.mpirun(1) + [bench, "allreduce", "300"]))
        except netns_nodes.Unavailable as e:
            print(f"(no 2-node measurement: {e})")
    return out


def workload_shape(path):
    """Subject sizes (neurons, training samples), the model's shared values, from a simulated data file."""
    with h5py.File(path, "r") as f:
        sizes = []
        for name in f["subjects"]:
            t, n = f["subjects"][name]["groups"]["neurons"].shape
            sizes.append((n, int(0.8 * t) - 1))
        s0 = f["subjects"][sorted(f["subjects"])[0]]
        n_props = s0["props"]["neurons"].shape[1]
        stim = s0["groups"]["stim"].shape[1]
        modes = next(int(v.split(":")[2]) for k, _, v in
                     (line.partition(" = ") for line in str(f.attrs["model"]).splitlines())
                     if k.strip() == "input" and v.startswith("neurons:"))
    def mlp(n_out):
        widths = [n_props] + HIDDEN + [n_out]
        return sum(a * b + b for a, b in zip(widths, widths[1:]))
    shared = mlp(modes) + mlp(stim + modes)  # p- and u-predictors
    return sizes, shared


def max_load(build, costs, ranks):
    out = run([os.path.join(build, "tests", "mslr_bench_comm"), "placement", str(ranks)] +
              [f"{c:.6g}" for c in costs])
    return float(out.strip().splitlines()[1].split(",")[1])


def tree_allreduce(ranks, nbytes, alpha, beta):
    return 0.0 if ranks == 1 else 2 * math.log2(ranks) * alpha + 2 * nbytes * beta


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--results", help="results.csv of tools/bench_fit.sh (its data files beside it)")
    ap.add_argument("--workloads", default="small medium")
    ap.add_argument("--ranks", default="8,64,512,1024")
    ap.add_argument("--alpha-us", default="5,10", help="interconnect latency per tree level, microseconds")
    ap.add_argument("--gbs", type=float, default=12.5, help="interconnect bandwidth, GB/s (HDR InfiniBand)")
    ap.add_argument("--out", default=".")
    a = ap.parse_args(argv)
    build = os.environ.get("MSLR_BUILD_DIR", os.path.join(HERE, "..", "build"))
    os.makedirs(a.out, exist_ok=True)
    workloads = a.workloads.split()
    if not a.results:
        folder = os.path.join(a.out, "bench")
        subprocess.run([os.path.join(HERE, "bench_fit.sh"), "--workloads", " ".join(workloads), "--rounds", "1",
                        "--no-reference", "--out", folder], env=ENV, check=True, stdout=subprocess.DEVNULL)
        a.results = os.path.join(folder, "results.csv")
    measured = {}
    for r in csv.DictReader(open(a.results)):
        if r["config"] == "mslr" and r["threads"] == "1":
            measured[(r["workload"], int(r["ranks"]))] = float(r["seconds_per_epoch"])

    links = measure_allreduce(build)
    print("all-reduce of a float64 buffer, t = alpha + beta * bytes (1-64 KiB):")
    for name, (alpha, beta) in links.items():
        print(f"  {name:24s} alpha {alpha * 1e6:7.2f} us   beta {beta * 1e9:7.3f} ns/byte "
              f"({1 / beta / 1e9 if beta else float('inf'):.2f} GB/s)")
    alpha2, beta2 = links["2 ranks, shared memory"]
    rng = np.random.default_rng(0)
    ranks = [int(r) for r in a.ranks.split(",")]
    alphas = [float(x) * 1e-6 for x in a.alpha_us.split(",")]
    beta_ib = 1.0 / (a.gbs * 1e9)
    rows = []
    print()
    for w in workloads:
        sizes, shared = workload_shape(os.path.join(os.path.dirname(a.results), f"{w}.h5"))
        nbytes = 8 * (shared + 2)
        t1 = measured[(w, 1)] / BATCHES  # seconds per step, 1 rank x 1 thread
        costs = [n * s for n, s in sizes]
        per_cost = t1 / sum(costs)
        lo, hi = min(n for n, _ in sizes), max(n for n, _ in sizes)
        samples = sizes[0][1]
        # Two ranks, this machine: the prediction against the measured efficiency.
        t2 = per_cost * max_load(build, costs, 2) + alpha2 + beta2 * nbytes
        predicted2 = t1 / (2 * t2)
        measured2 = measured[(w, 1)] / (2 * measured[(w, 2)]) if (w, 2) in measured else float("nan")
        print(f"{w}: {len(sizes)} subjects of {lo}-{hi} neurons, {shared} shared values ({nbytes} bytes "
              f"reduced per step), {t1 * 1e3:.2f} ms per step on 1 rank")
        print(f"  2 ranks here: predicted efficiency {predicted2:.3f}, measured by bench_fit.sh {measured2:.3f}")
        for p in ranks:
            weak_costs = [n * samples for n in rng.integers(lo, hi + 1, size=len(sizes) * p)]
            strong_costs = [n * samples for n in rng.integers(lo, hi + 1, size=POPULATION)]
            weak_load = max_load(build, weak_costs, p)
            strong_load, strong_total = max_load(build, strong_costs, p), float(sum(strong_costs))
            for alpha in alphas:
                comm = tree_allreduce(p, nbytes, alpha, beta_ib)
                # Against a rank holding the mean load alone: imbalance and communication are the losses.
                weak = per_cost * sum(weak_costs) / p / (per_cost * weak_load + comm)
                strong = (per_cost * strong_total) / (p * (per_cost * strong_load + comm))
                rows.append({"workload": w, "ranks": p, "alpha_us": alpha * 1e6, "comm_us": comm * 1e6,
                             "weak_efficiency": weak, "strong_efficiency": strong})
    print(f"\nprojected parallel efficiency (tree all-reduce, {a.gbs} GB/s; strong: {POPULATION} subjects)")
    print(f"{'workload':10s} {'ranks':>6s} {'alpha':>7s} {'all-reduce':>11s} {'weak':>7s} {'strong':>7s}")
    for r in rows:
        print(f"{r['workload']:10s} {r['ranks']:6d} {r['alpha_us']:5.0f}us {r['comm_us']:9.1f}us "
              f"{r['weak_efficiency']:7.3f} {r['strong_efficiency']:7.3f}")
    with open(os.path.join(a.out, "scaling_model.csv"), "w", newline="") as f:
        out = csv.DictWriter(f, fieldnames=list(rows[0]))
        out.writeheader()
        out.writerows(rows)

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for ax, kind in zip(axes, ("weak", "strong")):
        for w in workloads:
            for alpha in alphas:
                pts = [(r["ranks"], r[f"{kind}_efficiency"]) for r in rows
                       if r["workload"] == w and r["alpha_us"] == alpha * 1e6]
                ax.plot(*zip(*pts), marker="o", label=f"{w}, alpha {alpha * 1e6:.0f} us")
        ax.set_xscale("log", base=2)
        ax.set_xlabel("ranks")
        ax.set_title(f"{kind} scaling (model)")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("parallel efficiency")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    png = os.path.join(a.out, "scaling_model.png")
    fig.savefig(png, dpi=110)
    print(f"\nwrote {png} and {os.path.join(a.out, 'scaling_model.csv')}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
