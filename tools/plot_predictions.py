#!/usr/bin/env python3
"""Predictions against data for chosen neurons of one subject (and the noise-free means of simulated data).

    plot_predictions.py PREDICTIONS.h5 [--data data.h5] [--subject NAME] [--group neurons]
                        [--neurons 0,1,2,3] [--out predictions.png]
"""
import argparse
import sys

import h5py
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("predictions")
    ap.add_argument("--data")
    ap.add_argument("--subject")
    ap.add_argument("--group", default="neurons")
    ap.add_argument("--neurons", default="0,1,2,3")
    ap.add_argument("--out", default="predictions.png")
    a = ap.parse_args(argv)
    with h5py.File(a.predictions, "r") as p:
        data_path = a.data or (p.attrs["data"].decode() if isinstance(p.attrs["data"], bytes) else p.attrs["data"])
        subject = a.subject or sorted(p["subjects"])[0]
        s = p["subjects"][subject]
        times = s["times"][...]
        pred = s[a.group][...]
    with h5py.File(data_path, "r") as d:
        ds = d["subjects"][subject]
        y = ds[f"groups/{a.group}"][...][times]
        truth = ds[f"truth/means/{a.group}"][...][times] if f"truth/means/{a.group}" in ds else None
    neurons = [int(n) for n in a.neurons.split(",") if int(n) < pred.shape[1]]
    fig, axes = plt.subplots(len(neurons), 1, figsize=(10, 1.8 * len(neurons)), sharex=True, squeeze=False)
    for ax, n in zip(axes[:, 0], neurons):
        ax.plot(times, y[:, n], color="0.6", lw=0.8, label="data")
        if truth is not None:
            ax.plot(times, truth[:, n], color="k", lw=1.0, label="true mean")
        ax.plot(times, pred[:, n], color="C3", lw=1.0, ls="--", label="predicted mean")
        r2 = 1 - np.sum((y[:, n] - pred[:, n]) ** 2) / max(np.sum((y[:, n] - y[:, n].mean()) ** 2), 1e-30)
        ax.set_ylabel(f"{a.group} {n}\nR² {r2:.2f}", fontsize=8)
    axes[0, 0].legend(fontsize=7, ncol=3, loc="upper right")
    axes[-1, 0].set_xlabel("time point")
    fig.suptitle(f"{subject}: held-out predictions ({len(times)} samples)")
    fig.tight_layout()
    fig.savefig(a.out, dpi=110)
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
