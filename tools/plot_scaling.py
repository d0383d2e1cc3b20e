#!/usr/bin/env python3
"""Scaling study: time per epoch and parallel efficiency against the number of ranks.

    plot_scaling.py RESULTS.csv [--out scaling.png]

RESULTS.csv has a header and the columns ranks,seconds_per_epoch (more columns are ignored), one row per run,
as written by jobs/slurm-scaling.sh or tools/bench_fit.sh. Efficiency = T(r0)·r0 / (T(r)·r) against the
smallest rank count r0.
"""
import argparse
import csv
import sys

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("results")
    ap.add_argument("--out", default="scaling.png")
    a = ap.parse_args(argv)
    rows = list(csv.DictReader(open(a.results)))
    if not rows:
        raise SystemExit(f"plot_scaling.py: {a.results} has no rows")
    by_ranks = {}
    for r in rows:
        by_ranks.setdefault(int(r["ranks"]), []).append(float(r["seconds_per_epoch"]))
    ranks = np.array(sorted(by_ranks))
    t = np.array([np.median(by_ranks[r]) for r in ranks])
    eff = t[0] * ranks[0] / (t * ranks)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    ax1.loglog(ranks, t, "o-", label="measured")
    ax1.loglog(ranks, t[0] * ranks[0] / ranks, "k--", lw=0.8, label="ideal")
    ax1.set_xlabel("ranks")
    ax1.set_ylabel("seconds per epoch")
    ax1.legend()
    ax2.plot(ranks, eff, "o-")
    ax2.axhline(1.0, color="k", lw=0.8, ls="--")
    ax2.set_ylim(0, 1.1)
    ax2.set_xlabel("ranks")
    ax2.set_ylabel("parallel efficiency")
    for ax in (ax1, ax2):
        ax.set_xticks(ranks)
        ax.set_xticklabels([str(r) for r in ranks])
    fig.tight_layout()
    fig.savefig(a.out, dpi=110)
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
