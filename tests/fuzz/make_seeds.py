#!/usr/bin/env python3
"""Writes the seed inputs of the fuzz targets into tests/fuzz/corpus/<target>/seed-*.

    tests/fuzz/make_seeds.py [--mslr build/mslr]

Seeds are small valid inputs, so that the fuzzers start inside every format rather than at its first check:
data files written by `mslr simulate` and by h5py (both HDF5 layouts: the earliest, without metadata
checksums, and the latest), checkpoints of short fits of a few models, and configurations with command lines.
The rest of each corpus is what tools/fuzz.sh --merge added.
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile

import h5py
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
ENV = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")


def corpus(target, name):
    folder = os.path.join(HERE, "corpus", target)
    os.makedirs(folder, exist_ok=True)
    return os.path.join(folder, "seed-" + name)


def run(mslr, *args):
    subprocess.run([mslr, *args, "--quiet"], check=True, env=ENV)


def hand_made(path, libver):
    rng = np.random.default_rng(0)
    with h5py.File(path, "w", libver=libver) as f:
        f.attrs["format"] = "mslr-data"
        f.attrs["version"] = 1
        s = f.create_group("subjects/fish1")
        s["groups/stim"] = rng.standard_normal((10, 2)).astype(np.float32)
        s["groups/neurons"] = rng.standard_normal((10, 3)).astype(np.float32)
        s["props/neurons"] = rng.standard_normal((3, 2)).astype(np.float32)
        s["segments"] = np.array([[0, 6], [6, 10]], dtype=np.int64)
        means = rng.standard_normal((10, 3)).astype(np.float32)
        means[0] = np.nan
        s["truth/means/neurons"] = means
        t = f.create_group("subjects/fish2")
        t["groups/stim"] = rng.standard_normal((8, 2))
        t["groups/neurons"] = rng.standard_normal((8, 2))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mslr", default=os.path.join(ROOT, "build", "mslr"))
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="mslr-seeds-")
    try:
        data = os.path.join(work, "sim.h5")
        run(args.mslr, "simulate", "--out", data, "--subjects", "2", "--neurons-min", "3", "--neurons-max", "4",
            "--time-points", "16", "--stim-dims", "2", "--modes", "2")
        shutil.copy(data, corpus("data_reader", "simulated.h5"))
        hand_made(corpus("data_reader", "h5py-earliest.h5"), "earliest")
        hand_made(corpus("data_reader", "h5py-latest.h5"), "latest")

        fits = {
            "mlp": ["--model.hidden", "4"],
            "hypercube-props": ["--model.predictor", "hypercube", "--model.divisions", "2", "--copy-props"],
        }
        for name, model in fits.items():
            out = os.path.join(work, name)
            run(args.mslr, "fit", "--data", data, "--out", out, "--epochs", "2", "--batches", "2",
                "--checkpoint-every", "1", *model)
            shutil.copy(os.path.join(out, "checkpoints", "final.h5"), corpus("checkpoint_reader", name + ".h5"))
            with open(os.path.join(out, "config.ini"), "rb") as f:
                saved = f.read()
            with open(corpus("options_parser", name + "-saved-config"), "wb") as f:
                f.write(saved + b"\0--epochs\0005\0--model.hidden=8,8\0--train-range\0002:10")

        with open(os.path.join(ROOT, "jobs", "fit.ini"), "rb") as f:
            example = f.read()
        with open(corpus("options_parser", "example-config"), "wb") as f:
            f.write(example)
        with open(corpus("options_parser", "command-line"), "wb") as f:
            f.write(b"\0".join([b"", b"--model.input", b"stim:fixed:2", b"--model.output", b"neurons:owned:tanh",
                                b"--model.predictor", b"hypercube", b"--model.divisions", b"3,4",
                                b"--test-range", b"10:20", b"--threads", b"2", b"--lr-schedule", b"0:0.1,20:0.01",
                                b"--checkpoint-epochs", b"3,7", b"--dtype", b"float64", b"--step", b"autograd"]))
    finally:
        shutil.rmtree(work)
    print("make_seeds: seeds written under", os.path.join(HERE, "corpus"))


if __name__ == "__main__":
    sys.exit(main())
