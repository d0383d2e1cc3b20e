#!/usr/bin/env python3
"""A fitted model's latents over time for one subject: the projections x·p of each input group and the
transformed latents of each output group, from a file written by `mslr latents`.

    plot_latents.py LATENTS.h5 [--subject NAME] [--dims 4] [--out latents.png]
"""
import argparse
import sys

import h5py
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("latents")
    ap.add_argument("--subject", help="default: the first in the file")
    ap.add_argument("--dims", type=int, default=4, help="latent dimensions shown per group")
    ap.add_argument("--out", default="latents.png")
    a = ap.parse_args(argv)
    with h5py.File(a.latents, "r") as f:
        fmt = f.attrs.get("format")
        fmt = fmt.decode() if isinstance(fmt, bytes) else fmt
        if fmt != "mslr-latents":
            sys.exit(f"plot_latents.py: {a.latents} is not an mslr latents file (format {fmt!r})")
        subject = a.subject or sorted(f["subjects"])[0]
        if subject not in f["subjects"]:
            sys.exit(f"plot_latents.py: {a.latents} has no subject '{subject}' (it has {', '.join(f['subjects'])})")
        s = f["subjects"][subject]
        times = s["times"][...]
        panels = [(f"proj {g}", s["proj"][g][...]) for g in s["proj"]] + \
                 [(f"tran {h}", s["tran"][h][...]) for h in s["tran"]]
    fig, axes = plt.subplots(len(panels), 1, figsize=(10, 2.0 * len(panels)), sharex=True, squeeze=False)
    for ax, (title, x) in zip(axes[:, 0], panels):
        for k in range(min(a.dims, x.shape[1])):
            ax.plot(times, x[:, k], lw=0.8, label=f"{k}")
        ax.set_ylabel(title, fontsize=8)
        ax.legend(fontsize=6, ncol=a.dims, loc="upper right", title="dimension", title_fontsize=6)
    axes[-1, 0].set_xlabel("time point t (latents of the pair t-1, t)")
    fig.suptitle(f"{subject}: latents of {len(times)} samples")
    fig.tight_layout()
    fig.savefig(a.out, dpi=110)
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
