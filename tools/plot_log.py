#!/usr/bin/env python3
"""Plot a fit's log: the objective and each subject's NLL per epoch (means over the epoch's minibatches).

    plot_log.py RUN_FOLDER|metrics.jsonl|checkpoint.h5 [--out log.png]
"""
import argparse
import json
import os
import sys

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def read_log(path):
    """(epochs, elapsed, objective, {subject: nll per epoch}) from a run folder, metrics file or checkpoint."""
    if os.path.isdir(path):
        path = os.path.join(path, "metrics.jsonl")
    if path.endswith(".jsonl"):
        rows = [json.loads(line) for line in open(path) if line.strip()]
        subjects = list(rows[0]["subject_nll"]) if rows else []
        return (np.array([r["epoch"] + 1 for r in rows]), np.array([r["elapsed"] for r in rows]),
                np.array([r["objective"] for r in rows]),
                {s: np.array([r["subject_nll"][s] for r in rows]) for s in subjects})
    import h5py
    with h5py.File(path, "r") as f:
        names = {int(g.attrs["index"]): n for n, g in f["subjects"].items()}
        nll = f["log/subject_nll"][...]
        fitted = f["log/fitted"][...]
        return (f["log/epoch"][...] + 1, f["log/elapsed"][...], f["log/objective"][...],
                {names[int(i)]: nll[:, k] for k, i in enumerate(fitted)})


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("log", help="run folder, metrics.jsonl or checkpoint file")
    ap.add_argument("--out", default="log.png")
    a = ap.parse_args(argv)
    epochs, elapsed, objective, nll = read_log(a.log)
    if len(epochs) == 0:
        print(f"plot_log.py: {a.log} has no epochs yet", file=sys.stderr)
        return 1
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    ax1.plot(epochs, objective, color="k")
    ax1.set_xlabel("epoch")
    ax1.set_ylabel("objective (sum of subject NLLs)")
    ax1.set_yscale("symlog" if np.any(objective <= 0) else "log")
    ax1.set_title(f"objective; {elapsed[-1]:.1f} s for {len(epochs)} epochs")
    for s, v in nll.items():
        ax2.plot(epochs, v, label=s, lw=1)
    ax2.set_xlabel("epoch")
    ax2.set_ylabel("NLL of the subject's training data")
    ax2.set_yscale("symlog" if any(np.any(v <= 0) for v in nll.values()) else "log")
    ax2.set_title("per subject (means over each epoch's minibatches)")
    if len(nll) <= 12:
        ax2.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(a.out, dpi=110)
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
