#!/usr/bin/env python3
"""A campaign of hostile and malformed inputs against every subcommand, on 1 and 2 ranks.

Each case is a bad data file, checkpoint, predictions file, option value or output path, run through the real
binary. A case passes when mslr ends within the time limit with the exit status documented for it (1 for a bad
file, 2 for a bad command line or config, 0 for what is valid after all), prints a line of its own on stderr,
prints no library message in its place, and leaves no temporary file behind. A hang, a crash, a library message
or a leftover is a failure.

    tools/hostile_inputs.py [--mslr build/mslr] [--report report.md] [--sample N --seed S] [--only KINDS]

Prints one line per case and a summary; with --report, writes the table of every case (command, status,
seconds, message) as Markdown. Exit status 1 when any case failed.
"""
import argparse
import os
import random
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time

import h5py
import numpy as np

RAW = ("Expected reduction", "stoi", "stoll", "Dimension out of range", "value cannot be converted", "HDF5-DIAG",
       "terminate called", "Segmentation fault", "std::", "Traceback", "core dumped")
ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
           OMPI_MCA_rmaps_base_oversubscribe="1", OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
LIMIT_S = 60
MPIEXEC = os.environ.get("MPIEXEC", "mpirun")


# ---- bad data files: (name, edit(h5py.File)) applied to a copy of a valid 3-subject file ------------------------

def replace(path, value):
    def edit(f):
        if path in f or path in f.attrs:
            del f[path]
        if value is None:
            return
        if isinstance(value, str) and value == "group":
            f.create_group(path)
        elif callable(value):
            value(f, path)
        else:
            f[path] = value
    return edit


def change(path, fn):
    def edit(f):
        x = f[path][...]
        del f[path]
        f[path] = fn(x)
    return edit


def poke(path, index, value):
    def edit(f):
        x = f[path][...].astype("f8") if isinstance(value, float) and abs(value) > 3e38 else f[path][...]
        x[index] = value
        del f[path]
        f[path] = x
    return edit


def attr(name, value):
    def edit(f):
        if value is None:
            del f.attrs[name]
        else:
            f.attrs[name] = value
    return edit


def huge(shape, **kw):
    def make(f, path):
        f.create_dataset(path, shape=shape, dtype="f4", **kw)
    return make


def external(target_file, target):
    return lambda f, path: f.__setitem__(path, h5py.ExternalLink(target_file, target))


def soft(target):
    return lambda f, path: f.__setitem__(path, h5py.SoftLink(target))


def both(*edits):
    def edit(f):
        for e in edits:
            e(f)
    return edit


S1 = "subjects/subject1"
DATA_CASES = [
    ("no format attribute", attr("format", None)),
    ("wrong format", attr("format", "mslr-checkpoint")),
    ("format not a string", attr("format", 7)),
    ("no version", attr("version", None)),
    ("version 2", attr("version", 2)),
    ("version a string", attr("version", "one")),
    ("no /subjects", replace("subjects", None)),
    ("empty /subjects", both(replace("subjects", None), replace("subjects", "group"))),
    ("/subjects a dataset", both(replace("subjects", None), replace("subjects", np.zeros(3)))),
    ("subject a dataset", replace("subjects/subject9", np.zeros(3))),
    ("subject without groups", replace(S1 + "/groups", None)),
    ("groups a dataset", replace(S1 + "/groups", np.zeros(3))),
    ("empty groups", both(replace(S1 + "/groups", None), replace(S1 + "/groups", "group"))),
    ("group an HDF5 group", replace(S1 + "/groups/stim", "group")),
    ("group of strings", replace(S1 + "/groups/stim", np.array([b"a", b"b"]))),
    ("group of compound records", replace(S1 + "/groups/stim", np.zeros((120,), dtype=[("a", "f4"), ("b", "f4")]))),
    ("group 1-D", replace(S1 + "/groups/stim", np.zeros(120, "f4"))),
    ("group 3-D", replace(S1 + "/groups/stim", np.zeros((120, 2, 2), "f4"))),
    ("group scalar", replace(S1 + "/groups/stim", np.float32(1))),
    ("group of integers", change(S1 + "/groups/stim", lambda x: (x * 10).astype("i4"))),
    ("group of booleans", change(S1 + "/groups/stim", lambda x: x > 0)),
    ("group of float16", change(S1 + "/groups/stim", lambda x: x.astype("f2"))),
    ("group of complex", change(S1 + "/groups/stim", lambda x: x.astype("c8"))),
    ("group with 0 variables", both(replace(S1 + "/groups/neurons", np.zeros((120, 0), "f4")),
                                     replace(S1 + "/props/neurons", np.zeros((0, 3), "f4")))),
    ("group with 0 time points", both(replace(S1 + "/groups/neurons", np.zeros((0, 25), "f4")),
                                      replace(S1 + "/groups/stim", np.zeros((0, 4), "f4")))),
    ("groups of different lengths", change(S1 + "/groups/stim", lambda x: x[:-7])),
    ("nan in data", poke(S1 + "/groups/neurons", (37, 2), np.nan)),
    ("inf in data", poke(S1 + "/groups/stim", (5, 1), np.inf)),
    ("-inf in data", poke(S1 + "/groups/neurons", (50, 0), -np.inf)),
    ("nan in the test part (fit reads the training part only)", poke(S1 + "/groups/neurons", (119, 0), np.nan)),
    ("1e39 in float64 data", poke(S1 + "/groups/neurons", (5, 3), 1e39)),
    ("nan in props", poke(S1 + "/props/neurons", (4, 1), np.nan)),
    ("1e39 in props", poke(S1 + "/props/neurons", (4, 1), 1e39)),
    ("props with fewer rows", change(S1 + "/props/neurons", lambda x: x[:-3])),
    ("props 1-D", change(S1 + "/props/neurons", lambda x: x[:, 0])),
    ("props of strings", replace(S1 + "/props/neurons", np.array([b"x"] * 25))),
    ("props for an unknown group", replace(S1 + "/props/other", np.zeros((5, 3), "f4"))),
    ("props a dataset", both(replace(S1 + "/props", None), replace(S1 + "/props", np.zeros(3)))),
    ("props with a different count than other subjects", change(S1 + "/props/neurons", lambda x: x[:, :2])),
    ("float segments", replace(S1 + "/segments", np.array([[0, 50.7], [60, 120]]))),
    ("segments 1-D", replace(S1 + "/segments", np.array([0, 60, 120]))),
    ("segments [k, 3]", replace(S1 + "/segments", np.array([[0, 60, 1], [60, 120, 2]]))),
    ("overlapping segments", replace(S1 + "/segments", np.array([[0, 70], [60, 120]]))),
    ("segment beyond the data", replace(S1 + "/segments", np.array([[0, 60], [60, 500]]))),
    ("negative segment", replace(S1 + "/segments", np.array([[-5, 60]]))),
    ("empty segment", replace(S1 + "/segments", np.array([[0, 0], [0, 120]]))),
    ("segments of strings", replace(S1 + "/segments", np.array([b"0:60"]))),
    ("true means of another shape", change(S1 + "/truth/means/neurons", lambda x: x[:, :3])),
    ("true means a group", replace(S1 + "/truth/means/neurons", "group")),
    ("subject an external link", replace(S1, external("data.h5", "/subjects/subject1"))),
    ("group a dangling external link", replace(S1 + "/groups/stim", external("nowhere.h5", "/x"))),
    ("props an external link", replace(S1 + "/props/neurons", external("data.h5", "/subjects/subject0/props/neurons"))),
    ("subjects an external link", replace("subjects", external("data.h5", "/subjects"))),
    ("soft link through an external one", both(replace("elsewhere", external("nowhere.h5", "/x")),
                                                replace(S1 + "/props", None), replace(S1 + "/props", soft("/elsewhere")))),
    ("dangling soft link", replace(S1 + "/groups/stim", soft("/nothing/here"))),
    ("soft link loop", both(replace("loop_a", soft("/loop_b")), replace("loop_b", soft("/loop_a")),
                            replace(S1 + "/groups/stim", soft("/loop_a")))),
    ("2^40 time points declared", replace(S1 + "/groups/stim", huge((2**40, 4)))),
    ("2^40 time points, chunked and compressed", replace(S1 + "/groups/stim", huge((2**40, 4), chunks=(1024, 4),
                                                                                   compression="gzip"))),
    ("2^40 neurons declared", both(replace(S1 + "/groups/neurons", huge((120, 2**40))),
                                   replace(S1 + "/props/neurons", None))),
    ("2^40 property rows declared", replace(S1 + "/props/neurons", huge((2**40, 3)))),
    ("2^62 declared", replace(S1 + "/groups/stim", huge((2**62, 4)))),
    ("model attribute not INI", attr("model", "input = stim:fixed:4\nthis is not a setting\n")),
    ("model attribute unknown key", attr("model", "input = stim:fixed:4\noutput = neurons:owned\nbogus = 1\n")),
    ("model attribute bad value", attr("model", "input = stim:fixed:4\noutput = neurons:owned\nhidden = -3\n")),
    ("model attribute binary", attr("model", np.void(b"\x00\x01\x02"))),
    ("subject named with a quote and a newline", lambda f: f.move(S1, 'subjects/a"b\nc')),
    ("subject named 1", lambda f: f.move("subjects/subject0", "subjects/1")),
]

# Whole-file damage: (name, function(valid path, bad path)).
def truncate(fraction):
    def make(src, dst):
        with open(src, "rb") as f:
            data = f.read()
        with open(dst, "wb") as f:
            f.write(data[:int(len(data) * fraction)])
    return make


def flip_bytes(seed, count):
    def make(src, dst):
        data = bytearray(open(src, "rb").read())
        rng = random.Random(seed)
        for _ in range(count):
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        open(dst, "wb").write(bytes(data))
    return make


FILE_CASES = [("empty file", lambda s, d: open(d, "wb").close()),
              ("random bytes", lambda s, d: open(d, "wb").write(os.urandom(4096))),
              ("text", lambda s, d: open(d, "w").write("time,neuron\n1,2\n"))] + \
             [(f"truncated to {int(fr * 100)}%", truncate(fr)) for fr in (0.01, 0.3, 0.6, 0.9, 0.99)] + \
             [(f"{n} flipped bits (seed {s})", flip_bytes(s, n)) for s, n in ((1, 1), (2, 4), (3, 16), (4, 64), (5, 256))]

# ---- bad checkpoints ---------------------------------------------------------------------------------------------

CKPT_CASES = [
    ("format predictions", attr("format", "mslr-predictions")),
    ("version 9", attr("version", 9)),
    ("incomplete", attr("complete", 0)),
    ("no config", attr("config", None)),
    ("negative epoch", attr("epoch", -5)),
    ("huge epoch", attr("epoch", 2**40)),
    ("negative batch", attr("batch", -1)),
    ("world size 0", attr("world_size", 0)),
    ("nan learning rate", attr("adam_lr", float("nan"))),
    ("negative elapsed", attr("elapsed", -3.0)),
    ("short objective log", change("log/objective", lambda x: x[:1])),
    ("long subject_nll", change("log/subject_nll", lambda x: np.zeros((x.shape[0] + 5, x.shape[1])))),
    ("1-D subject_nll", change("log/subject_nll", lambda x: x.ravel())),
    ("more log entries than epochs", both(*[change(p, lambda x: np.concatenate([x, x])) for p in
                                            ("log/epoch", "log/elapsed", "log/objective", "log/lr")],
                                          change("log/subject_nll", lambda x: np.concatenate([x, x])))),
    ("fitted index 99", poke("log/fitted", 0, 99)),
    ("nan in a subject's params", poke("subjects/subject1/params", 3, np.nan)),
    ("inf in the shared params", poke("shared/params", 7, np.inf)),
    ("nan in adam_m", poke("shared/adam_m", 1, np.nan)),
    ("negative adam_v", poke("shared/adam_v", 2, -1.0)),
    ("short subject params", change("subjects/subject0/params", lambda x: x[:-2])),
    ("params of strings", replace("shared/params", np.array([b"x"] * 4))),
    ("bad parameter shape", lambda f: f["shared"].attrs.__setitem__("param_shapes", "3,x;")),
    ("parameter names and shapes disagree", lambda f: f["shared"].attrs.__setitem__("param_names", "a\nb\n")),
    ("duplicate subject index", lambda f: f["subjects/subject1"].attrs.__setitem__("index", 0)),
    ("subject index out of range", lambda f: f["subjects/subject1"].attrs.__setitem__("index", 50)),
    ("negative adam_step", replace("subjects/subject0/adam_step", np.int64(-4))),
    ("adam_step 1-D", replace("subjects/subject0/adam_step", np.zeros(3, "i8"))),
    ("no subjects", replace("subjects", None)),
    ("subject an external link", replace("subjects/subject1", external("x.h5", "/s"))),
    ("config names a different model", attr("model", "[model]\nhidden = 7\n")),
]

PRED_CASES = [
    ("predictions of another width", change("subjects/subject0/neurons", lambda x: x[:, :1])),
    ("samples attribute wrong", lambda f: f["subjects/subject1"].attrs.__setitem__("samples", 5)),
    ("time beyond the data", poke("subjects/subject1/times", 3, 10**6)),
    ("negative time", poke("subjects/subject1/times", 0, -4)),
    ("group the data lacks", lambda f: f.__setitem__("subjects/subject1/other", f["subjects/subject1/neurons"][...])),
    ("subject the data lacks", lambda f: f.move("subjects/subject1", "subjects/ghost")),
    ("times of floats", change("subjects/subject1/times", lambda x: x + 0.5)),
    ("nll a vector", replace("subjects/subject1/nll", np.zeros(3))),
    ("format a checkpoint", attr("format", "mslr-checkpoint")),
    ("means of strings", replace("subjects/subject0/neurons", np.array([b"x"] * 24))),
    ("predictions a group", replace("subjects/subject0/neurons", "group")),
    ("no samples attribute", lambda f: f["subjects/subject1"].attrs.__delitem__("samples")),
]

# ---- bad option values: (command, extra args, expected status) ---------------------------------------------------

FIT_OPTIONS = [[o, v] for o, vs in (
    ("--epochs", ["-1", "ten", "1.5", "9999999999999", ""]), ("--batches", ["0", "-3", "x", "100000"]),
    ("--lr", ["-1", "0", "nan", "inf", "1e400", "fast"]), ("--lr-schedule", ["", "0:x", "5:0.1", "0:0.1,0:0.2",
                                                                             "0:0.1,5:-1", "0:0.1,a:0.2"]),
    ("--adam-beta1", ["1.5", "-0.1", "nan"]), ("--adam-beta2", ["2"]), ("--adam-eps", ["-1", "inf"]),
    ("--min-var", ["0", "-1", "nan"]), ("--seed", ["-1", "x"]), ("--subjects", ["7", "-1", "fish9", ",,", "0,0"]),
    ("--checkpoint-every", ["-1", "x"]), ("--checkpoint-epochs", ["a,b", "-3", "1.5"]),
    ("--keep-checkpoints", ["-2"]), ("--dtype", ["float16", "int"]), ("--step", ["fast"]),
    ("--update-interval", ["0"]), ("--train-fraction", ["0", "1.5", "nan"]), ("--train-range", ["10:5"]),
    ("--threads", ["-1", "x"]), ("--blas-threads", ["0"]), ("--gpus-per-rank", ["-1", "1"]),
    ("--model.hidden", ["-5", "0", "", "3,x"]), ("--model.divisions", ["0"]), ("--model.cube-side", ["0"]),
    ("--model.range-lo", ["", "x"]), ("--model.init-std", ["nan", "-1", "0"]), ("--model.psi-init", ["inf", "0"]),
    ("--model.activation", ["swish"]), ("--model.predictor", ["tree"]), ("--model.mapping", ["linear:x", "none"]),
    ("--model.input", ["stim", "stim:bad:2", "stim:fixed:-1", "nothing:fixed:2"]),
    ("--model.output", ["neurons:predicted:swish", "neurons"]), ("--model.direct", ["a:b"]),
    ("--model.p-mode-scaling", ["median"]), ("--config", ["/", "/nonexistent.ini"]), ("--copy-data", ["maybe"]),
    ("--epoch", ["3"]), ("--resume", ["/nonexistent"])) for v in vs]


def edited_copy(src, dst, edit):
    """Copies `src` to `dst` and applies `edit(h5py.File)` to the copy; returns dst."""
    shutil.copy(src, dst)
    with h5py.File(dst, "a") as f:
        edit(f)
    return dst


class Campaign:
    def __init__(self, mslr, scratch, limit):
        self.mslr, self.dir, self.limit = mslr, scratch, limit
        self.results = []

    def path(self, *p):
        return os.path.join(self.dir, *p)

    def run(self, kind, name, args, np_=None, expect=(1, 2)):
        cmd = ([MPIEXEC, "-np", str(np_)] if np_ else []) + [self.mslr] + [str(a) for a in args]
        start = time.time()
        try:
            p = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=self.limit,
                               errors="replace", cwd=self.dir)
            status, err = p.returncode, p.stderr
        except subprocess.TimeoutExpired as e:
            status, err = "hang", (e.stderr or b"").decode(errors="replace") if isinstance(e.stderr, bytes) else ""
            subprocess.run(["pkill", "-9", "-f", self.dir], capture_output=True)
        took = time.time() - start
        lines = [x for x in err.splitlines() if x.startswith("mslr")]
        message = lines[0] if lines else (err.strip().splitlines() or [""])[0]
        problems = []
        if status not in expect:
            problems.append(f"status {status}, expected {' or '.join(map(str, expect))}")
        if status != 0 and not lines:
            problems.append("no message of mslr's")
        problems += [f"library message '{r}'" for r in RAW if r in err]
        leftovers = [os.path.join(r, f) for r, _, fs in os.walk(self.dir) for f in fs if f.endswith(".tmp")]
        if leftovers:
            problems.append(f"left {leftovers[0]}")
            for x in leftovers:
                os.unlink(x)
        ranks = f"{np_} ranks" if np_ else "1 rank"
        self.results.append((kind, name, " ".join(map(str, args[:1])) + f" ({ranks})", status, took, message,
                             problems))
        mark = "FAIL " + "; ".join(problems) if problems else "ok"
        print(f"{mark:6} {kind:10} {name[:44]:44} {args[0]:8} {ranks:8} {str(status):4} {took:5.1f}s  {message[:90]}",
              flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--mslr", default=os.path.join(here, "..", "build", "mslr"))
    ap.add_argument("--report", help="write every case as a Markdown table here")
    ap.add_argument("--sample", type=int, default=0, help="run only N cases drawn at random (0: all)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--only", help="only these kinds, comma-separated: data,file,checkpoint,predictions,option,output")
    ap.add_argument("--limit", type=float, default=LIMIT_S, help="seconds before a case counts as a hang")
    a = ap.parse_args()
    mslr = os.path.abspath(a.mslr)
    scratch = tempfile.mkdtemp(prefix="mslr-hostile-")
    c = Campaign(mslr, scratch, a.limit)
    data = c.path("data.h5")

    def ok(*args, np_=None):
        subprocess.run(([MPIEXEC, "-np", str(np_)] if np_ else []) + [mslr] + list(map(str, args)), env=ENV,
                       check=True, capture_output=True, cwd=scratch)
    ok("simulate", "--out", data, "--subjects", 3, "--neurons-min", 20, "--neurons-max", 30, "--time-points", 120)
    ok("fit", "--data", data, "--out", c.path("run"), "--epochs", 3, "--batches", 2, "--checkpoint-every", 1, np_=2)
    ok("predict", "--checkpoint", c.path("run"), "--out", c.path("pred.h5"))
    final = c.path("run", "checkpoints", "final.h5")

    cases = []  # (kind, name, setup() -> args list of (args, np, expect))
    for name, edit in DATA_CASES:
        def setup(name=name, edit=edit):
            return edited_copy(data, c.path("bad-" + str(abs(hash(name))) + ".h5"), edit)
        cases.append(("data", name, setup))
    for name, make in FILE_CASES:
        def setup(name=name, make=make):
            bad = c.path("file-" + str(abs(hash(name))) + ".h5")
            make(data, bad)
            return bad
        cases.append(("file", name, setup))
    # Valid after all: integers and float16 convert exactly, unknown saved keys are ignored, any name is a name.
    # A model attribute is read only by a fit given no model, a setting of a predictor the model lacks is unused,
    # and fit reads the training part of the data only.
    valid_after_all = {"group of integers", "group of float16", "model attribute unknown key",
                       "subject named with a quote and a newline", "subject named 1", "model attribute bad value",
                       "nan in the test part (fit reads the training part only)"}
    jobs = []
    for kind, name, setup in cases:
        expect = (0, 1, 2) if name in valid_after_all or "flipped" in name else (1, 2)
        def go(kind=kind, name=name, setup=setup, expect=expect):
            bad = setup()
            c.run(kind, name, ["fit", "--data", bad, "--out", c.path("r"), "--epochs", 1, "--overwrite"], None,
                  expect)
            c.run(kind, name, ["fit", "--data", bad, "--out", c.path("r"), "--epochs", 1, "--overwrite"], 2, expect)
            c.run(kind, name, ["predict", "--checkpoint", c.path("run"), "--data", bad, "--out", c.path("p.h5")], 2,
                  (0, 1, 2) if "model attribute" in name else expect)
            c.run(kind, name, ["inspect", bad], None, (0, 1))
        jobs.append((kind, go))
    for name, edit in CKPT_CASES:
        def go(name=name, edit=edit):
            bad = edited_copy(final, c.path("ckpt-" + str(abs(hash(name))) + ".h5"), edit)
            c.run("checkpoint", name, ["fit", "--resume", bad, "--out", c.path("r2"), "--epochs", 5, "--overwrite"],
                  2)
            c.run("checkpoint", name, ["predict", "--checkpoint", bad, "--out", c.path("p.h5")], 2, (0, 1, 2))
            c.run("checkpoint", name, ["inspect", bad], None, (0, 1))
        jobs.append(("checkpoint", go))
    for name, edit in PRED_CASES:
        def go(name=name, edit=edit):
            bad = edited_copy(c.path("pred.h5"), c.path("pred-" + str(abs(hash(name))) + ".h5"), edit)
            c.run("predictions", name, ["eval", "--predictions", bad, "--data", data])
            c.run("predictions", name, ["eval", "--predictions", bad, "--data", data, "--json"])
        jobs.append(("predictions", go))
    for option, value in FIT_OPTIONS:
        def go(option=option, value=value):
            c.run("option", f"{option} '{value}'", ["fit", "--data", data, "--out", c.path("r3"), "--epochs", 1,
                                                     "--overwrite", option, value], None, (1, 2))
        jobs.append(("option", go))

    def outputs():
        os.mkfifo(c.path("fifo"))
        # A data file that was not simulated: never replaced.
        recorded = edited_copy(data, c.path("recorded.h5"), lambda f: f.attrs.__delitem__("simulate"))
        os.symlink(data, c.path("alias.h5"))
        os.symlink(recorded, c.path("recorded-alias.h5"))
        # Never the system's /dev/null: a regression would replace it. A node of its own, where allowed.
        devices = []
        try:
            os.mknod(c.path("null"), stat.S_IFCHR | 0o666, os.makedev(1, 3))
            devices = [c.path("null")]
        except OSError:
            pass
        for out in (data, c.path("alias.h5"), recorded, final, c.path("fifo"), scratch, *devices):
            c.run("output", f"predict --out {os.path.basename(out)}",
                  ["predict", "--checkpoint", c.path("run"), "--out", out], 2)
        for out in (recorded, c.path("recorded-alias.h5"), final, c.path("pred.h5"), c.path("fifo"), scratch,
                    *devices):
            c.run("output", f"simulate --out {os.path.basename(out)}", ["simulate", "--out", out, "--subjects", 1,
                                                                         "--neurons-min", 5, "--neurons-max", 5,
                                                                         "--time-points", 20])
        c.run("output", "fit --out a finished run", ["fit", "--data", data, "--out", c.path("run"), "--epochs", 1])
        c.run("output", "fit --out a file", ["fit", "--data", data, "--out", data, "--epochs", 1])
        c.run("output", "data is a FIFO", ["fit", "--data", c.path("fifo"), "--out", c.path("r4")])
        c.run("output", "checkpoint is a FIFO", ["predict", "--checkpoint", c.path("fifo"), "--out", c.path("x.h5")])
        c.run("output", "predictions is a FIFO", ["eval", "--predictions", c.path("fifo")])
    jobs.append(("output", outputs))

    if a.only:
        jobs = [j for j in jobs if j[0] in a.only.split(",")]
    if a.sample:
        jobs = random.Random(a.seed).sample(jobs, min(a.sample, len(jobs)))
    start = time.time()
    for _, job in jobs:
        job()
    failed = [r for r in c.results if r[6]]
    print(f"\n{len(c.results)} runs of {len(jobs)} cases in {time.time() - start:.0f} s: "
          f"{len(c.results) - len(failed)} as documented, {len(failed)} failed")
    if a.report:
        with open(a.report, "w") as f:
            f.write("| kind | case | command | status | s | message | problem |\n|---|---|---|---|---|---|---|\n")
            for kind, name, cmd, status, took, message, problems in c.results:
                cell = lambda s: str(s).replace("|", "\\|").replace("\n", " ")
                f.write(f"| {kind} | {cell(name)} | {cmd} | {status} | {took:.1f} | {cell(message)} | "
                        f"{cell('; '.join(problems))} |\n")
    shutil.rmtree(scratch, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
