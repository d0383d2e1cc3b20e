#!/usr/bin/env python3
"""Mode maps: each neuron drawn at its 3-D position, coloured by its loading on a mode, seen from the top (x-y)
and the side (x-z). Loadings are the fitted model's modes stored in a checkpoint (modes/p.<group> and
modes/u.<group>); positions come from the checkpoint (with --copy-props) or the data file.

    plot_modes.py CHECKPOINT|RUN_FOLDER [--data data.h5] [--subject NAME] [--kind p|u] [--group neurons]
                  [--modes 0,1,2] [--out modes.png]

With --truth, a second row shows the simulator's true modes (truth/p_modes or truth/u_modes in the data file).
"""
import argparse
import os
import sys

import h5py
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def resolve(path):
    if os.path.isdir(path):
        for link in ("checkpoints/latest", "latest"):
            if os.path.exists(os.path.join(path, link)):
                return os.path.join(path, link)
        raise SystemExit(f"plot_modes.py: no checkpoint in {path}")
    return path


def attr(f, key):
    v = f.attrs[key]
    return v.decode() if isinstance(v, bytes) else str(v)


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint")
    ap.add_argument("--data", help="data file with the positions (default: the one the fit used)")
    ap.add_argument("--subject", help="subject name (default: the first)")
    ap.add_argument("--kind", default="p", choices=["p", "u"])
    ap.add_argument("--group", default="neurons")
    ap.add_argument("--modes", default="0,1,2,3")
    ap.add_argument("--truth", action="store_true", help="also draw the true modes of simulated data")
    ap.add_argument("--out", default="modes.png")
    a = ap.parse_args(argv)
    path = resolve(a.checkpoint)
    with h5py.File(path, "r") as f:
        subject = a.subject or sorted(f["subjects"])[0]
        s = f["subjects"][subject]
        key = f"modes/{a.kind}.{a.group}"
        if key not in s:
            raise SystemExit(f"plot_modes.py: {path}: subject '{subject}' has no {key} (fitted subjects with "
                             f"predicted modes only)")
        modes = s[key][...]
        pos = s[f"props/{a.group}"][...] if f"props/{a.group}" in s else None
        data_path = a.data
        if data_path is None:
            for line in attr(f, "config").splitlines():
                if line.startswith("data = "):
                    data_path = line[len("data = "):]
    truth = None
    if pos is None or a.truth:
        if data_path is None:
            raise SystemExit("plot_modes.py: give --data (the checkpoint holds no positions)")
        with h5py.File(data_path, "r") as d:
            ds = d["subjects"][subject]
            if pos is None:
                pos = ds[f"props/{a.group}"][...]
            tkey = f"truth/{a.kind}_modes/{a.group}"
            if a.truth and tkey in ds:
                truth = ds[tkey][...]
    cols = [int(m) for m in a.modes.split(",") if int(m) < modes.shape[1]]
    rows = [("fitted", modes)] + ([("true", truth)] if truth is not None else [])
    fig, axes = plt.subplots(2 * len(rows), len(cols), figsize=(3.4 * len(cols), 3.0 * 2 * len(rows)), squeeze=False,
                             constrained_layout=True)
    for r, (label, m) in enumerate(rows):
        for c, j in enumerate(cols):
            v = m[:, j]
            lim = np.max(np.abs(v)) or 1.0
            for k, (dims, view) in enumerate((((0, 1), "top (x-y)"), ((0, 2), "side (x-z)"))):
                ax = axes[2 * r + k, c]
                sc = ax.scatter(pos[:, dims[0]], pos[:, dims[1]], c=v, cmap="RdBu_r", vmin=-lim, vmax=lim, s=6)
                ax.set_title(f"{label} {a.kind}-mode {j}, {view}", fontsize=8)
                ax.set_aspect("equal", adjustable="datalim")
                ax.tick_params(labelsize=6)
            fig.colorbar(sc, ax=axes[2 * r:2 * r + 2, c], shrink=0.6)
    fig.suptitle(f"{subject}: {a.kind}-modes of '{a.group}' ({pos.shape[0]} neurons)")
    fig.savefig(a.out, dpi=110)
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
