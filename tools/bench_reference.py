#!/usr/bin/env python3
"""The benchmark peer of `mslr fit`: the same model and the same step, written the straightforward way the
Python fitter mslr grew from runs it (a loop over subjects, autograd, torch.optim.Adam, one thread).

    bench_reference.py DATA.h5 [--epochs 3] [--batches 10] [--lr 0.01] [--hidden 32,32] [--offsets]
                       [--p-mode-scaling none|mean] [--threads 1] [--train-fraction 0.8] [--seed 0]

Reads an mslr-data file written by `mslr simulate` (groups `stim` and `neurons`, properties of `neurons`) and
fits its generating model: stim (fixed identity modes) and neurons (MLP-predicted p-modes) at t-1, concatenated,
onto neurons at t (MLP-predicted u-modes), Gaussian noise with a variance per neuron held >= min_var.
Prints one line per epoch and a last line `reference: S s/epoch` (the mean over the epochs after the first,
which warms up the allocator). Needs Debian's python3-torch, python3-h5py and python3-numpy.
"""
import argparse
import math
import sys
import time

import h5py
import numpy as np
import torch


def mlp(n_in, hidden, n_out):
    layers, width = [], n_in
    for h in hidden:
        layers += [torch.nn.Linear(width, h), torch.nn.Tanh()]
        width = h
    layers.append(torch.nn.Linear(width, n_out))
    return torch.nn.Sequential(*layers)


class Subject:
    """One subject: its data, its training samples and its own parameters (psi, optional offsets)."""

    def __init__(self, group, train_fraction, offsets):
        self.stim = torch.from_numpy(group["groups/stim"][...])  # [T, d_stim]
        self.neurons = torch.from_numpy(group["groups/neurons"][...])  # [T, N]
        self.props = torch.from_numpy(group["props/neurons"][...])  # [N, 3]
        t = self.neurons.shape[0]
        # Sample pairs (t-1, t) inside the first round(f T) points, as mslr splits them.
        self.train = torch.arange(1, int(round(train_fraction * t)))
        n = self.neurons.shape[1]
        self.psi = torch.nn.Parameter(torch.ones(n))
        self.offsets = torch.nn.Parameter(torch.zeros(n)) if offsets else None

    def parameters(self):
        return [self.psi] + ([self.offsets] if self.offsets is not None else [])


def nll(y, mn, psi):
    n, d = y.shape
    return 0.5 * n * d * math.log(2 * math.pi) + 0.5 * n * psi.log().sum() + 0.5 * ((y - mn) ** 2 / psi).sum()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("data")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batches", type=int, default=10)
    ap.add_argument("--lr", type=float, default=0.01)
    ap.add_argument("--min-var", type=float, default=1e-3)
    ap.add_argument("--hidden", default="32,32")
    ap.add_argument("--offsets", action="store_true", help="learn an offset per neuron (mslr's default)")
    ap.add_argument("--p-mode-scaling", choices=["none", "mean"], default="none")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--train-fraction", type=float, default=0.8)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)

    with h5py.File(a.data, "r") as f:
        subjects = [Subject(f["subjects"][name], a.train_fraction, a.offsets) for name in sorted(f["subjects"])]
    d_stim = subjects[0].stim.shape[1]
    n_modes = 4
    hidden = [int(h) for h in a.hidden.split(",")]
    # Properties mapped onto [-1, 1] once (as mslr prepares them); not part of the step.
    lo = torch.stack([s.props.min(0).values for s in subjects]).min(0).values
    hi = torch.stack([s.props.max(0).values for s in subjects]).max(0).values
    for s in subjects:
        s.props = (s.props - (lo + hi) / 2) / ((hi - lo) / 2)
    p_pred = mlp(3, hidden, n_modes)
    u_pred = mlp(3, hidden, d_stim + n_modes)
    params = list(p_pred.parameters()) + list(u_pred.parameters())
    for s in subjects:
        params += s.parameters()
    opt = torch.optim.Adam(params, lr=a.lr)

    times = []
    for e in range(a.epochs):
        t0 = time.perf_counter()
        order = [s.train[torch.randperm(len(s.train))] for s in subjects]
        for b in range(a.batches):
            opt.zero_grad()
            obj = 0.0
            for s, o in zip(subjects, order):
                bs = len(o) // a.batches
                t = o[b * bs:(b + 1) * bs]
                # The predictors run over the subject's neurons for every minibatch, as the Python fitter does.
                p = p_pred(s.props)  # [N, K]
                if a.p_mode_scaling == "mean":
                    p = p / p.shape[0]
                u = u_pred(s.props)  # [N, d_stim + K]
                x = s.neurons[t - 1]
                tran = torch.cat([s.stim[t - 1], x @ p], 1)  # [b, d_stim + K]
                mn = tran @ u.t()
                if s.offsets is not None:
                    mn = mn + s.offsets
                obj = obj + (len(o) / bs) * nll(s.neurons[t], mn, s.psi)
            obj.backward()
            opt.step()
            with torch.no_grad():
                for s in subjects:
                    s.psi.clamp_(min=a.min_var)
        times.append(time.perf_counter() - t0)
        print(f"epoch {e + 1}/{a.epochs}: objective {float(obj):.6g}, {times[-1]:.4f} s", flush=True)
    measured = times[1:] if len(times) > 1 else times
    print(f"reference: {sum(measured) / len(measured):.6g} s/epoch")


if __name__ == "__main__":
    sys.exit(main())
