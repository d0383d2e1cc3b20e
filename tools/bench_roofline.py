#!/usr/bin/env python3
"""The work of one epoch of `mslr fit` on a data file written by `mslr simulate`, computed from the shapes, and
its roofline bound on a machine of given rates.

    bench_roofline.py DATA.h5 --gemm-gflops R --read-gbs W [--batches 10] [--hidden 32,32]
                      [--train-fraction 0.8] [--cores 1]

FLOPs (a multiply-add counts 2): both predictor MLPs over every subject's neurons at every step, forward and
backward (weight gradients and the hidden layers' input gradients); and per subject and step the five
products of the regression over the minibatch (x·p, z = tran·uᵀ, d tran = dz·u, du = dzᵀ·tran, dp = xᵀ·d proj).
Bytes: what a step must read at least, the minibatch's rows at t-1 and at t of every subject (the parameters
and activations are small enough to stay in cache in principle). The bound is max(FLOPs / product rate,
bytes / read bandwidth) with the rates of `cores` cores (the product rate: mslr_bench_machine's gemm_gflops,
the better of the BLAS's GEMM and mslr's dense kernels). Prints one line of `key value` pairs.
"""
import argparse
import sys

import h5py


def model_modes(f):
    """The number of p-modes of the neurons in the model `mslr simulate` recorded in the file."""
    for line in str(f.attrs.get("model", "")).splitlines():
        key, _, value = (part.strip() for part in line.partition("="))
        if key == "input" and value.startswith("neurons:"):
            return int(value.split(":")[2])
    raise SystemExit(f"{f.filename}: no 'input = neurons:...' in its model attribute (not written by mslr simulate?)")


def epoch_work(path, batches, hidden, train_fraction):
    flops = 0.0
    data_bytes = 0.0
    with h5py.File(path, "r") as f:
        for name in sorted(f["subjects"]):
            g = f["subjects"][name]["groups"]
            t, n = g["neurons"].shape
            d_stim = g["stim"].shape[1]
            n_props = f["subjects"][name]["props"]["neurons"].shape[1]
            modes = model_modes(f)
            latent = d_stim + modes
            samples = int(round(train_fraction * t)) - 1
            b = samples // batches
            for n_out in (modes, latent):  # the p- and the u-mode predictor
                widths = [n_props] + hidden + [n_out]
                layer = [widths[i] * widths[i + 1] for i in range(len(widths) - 1)]
                # forward, weight gradients, and input gradients of every layer but the first
                flops += batches * n * 2.0 * (sum(layer) + sum(layer) + sum(layer[1:]))
            flops += batches * 2.0 * b * n * (modes + latent + latent + latent + modes)
            data_bytes += batches * 2.0 * b * n * 4
    return flops, data_bytes


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("data")
    ap.add_argument("--gemm-gflops", type=float, required=True)
    ap.add_argument("--read-gbs", type=float, required=True)
    ap.add_argument("--batches", type=int, default=10)
    ap.add_argument("--hidden", default="32,32")
    ap.add_argument("--train-fraction", type=float, default=0.8)
    a = ap.parse_args()
    hidden = [int(h) for h in a.hidden.split(",")]
    flops, data_bytes = epoch_work(a.data, a.batches, hidden, a.train_fraction)
    t_flops = flops / (a.gemm_gflops * 1e9)
    t_bytes = data_bytes / (a.read_gbs * 1e9)
    print(f"gflop {flops / 1e9:.3f} gbytes {data_bytes / 1e9:.3f} t_flops {t_flops:.4g} t_bytes {t_bytes:.4g} "
          f"bound {max(t_flops, t_bytes):.4g}")


if __name__ == "__main__":
    sys.exit(main())
