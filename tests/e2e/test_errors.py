"""Bad input through the real binary: one clear line naming the file, subject, group or option, a non-zero exit,
no hang, and no output file that looks complete. Also every subcommand's --help."""
import json
import os
import resource
import shutil
import signal
import stat
import subprocess
import sys
import unittest

import h5py
import numpy as np

from helpers import ENV, MSLR, TOOLS, ScratchTest, mslr, tool


def small_data(path, **changes):
    """A valid 2-subject mslr-data file, then `changes` applied with h5py: {dataset path: array or None}."""
    mslr("simulate", "--out", path, "--subjects", 2, "--neurons-min", 20, "--neurons-max", 30, "--time-points", 120)
    with h5py.File(path, "a") as f:
        for k, v in changes.items():
            if k.startswith("@"):
                f.attrs[k[1:]] = v
            elif v is None:
                del f[k]
            else:
                data = f[k][...] if k in f else None
                del f[k]
                f[k] = v(data) if callable(v) else v


sys.path.insert(0, TOOLS)
from hostile_inputs import RAW, edited_copy  # noqa: E402  library messages that must never reach the user


class FailingRuns(ScratchTest):
    def fails(self, *args, code=1, np=None, env=None):
        """Runs mslr, expects exit status `code`, no library message, and returns our first line on stderr."""
        p = mslr(*args, np=np, check=False, timeout=120, env=env)
        self.assertEqual(p.returncode, code, f"mslr {' '.join(map(str, args))}\n{p.stdout}\n{p.stderr}")
        for raw in RAW:
            self.assertNotIn(raw, p.stderr, p.stderr)
        lines = [line for line in p.stderr.splitlines() if line.startswith("mslr")]
        self.assertTrue(lines, p.stderr)
        return lines[0]

    def fit_fails(self, data, *extra, np=2, code=1):
        """A 2-rank fit of `data` that fails with `code` and leaves no checkpoint; returns its message."""
        out = self.path("run")
        msg = self.fails("fit", "--data", data, "--out", out, "--epochs", 2, *extra, np=np, code=code)
        # Nothing under the run folder that looks like a checkpoint.
        ckpts = os.path.join(out, "checkpoints")
        self.assertFalse(os.path.exists(ckpts) and [x for x in os.listdir(ckpts) if x.endswith(".h5")])
        return msg


class Errors(FailingRuns):
    def test_missing_file(self):
        self.assertIn(f"{self.path('nope.h5')}: no such file", self.fit_fails(self.path("nope.h5")))

    def test_not_hdf5(self):
        with open(self.path("text.h5"), "w") as f:
            f.write("not hdf5\n")
        self.assertIn("text.h5: not an HDF5 file", self.fit_fails(self.path("text.h5")))

    def test_wrong_format_attribute(self):
        small_data(self.path("d.h5"), **{"@format": "something-else"})
        self.assertIn("d.h5: format is 'something-else', expected 'mslr-data'", self.fit_fails(self.path("d.h5")))

    def test_missing_subject(self):
        small_data(self.path("d.h5"))
        self.assertIn("--subjects: " + self.path("d.h5") + ": no subject 'fish9'",
                      self.fit_fails(self.path("d.h5"), "--subjects", "fish9", code=2))

    def test_missing_group(self):
        small_data(self.path("d.h5"), **{"subjects/subject1/groups/stim": None})
        msg = self.fit_fails(self.path("d.h5"))
        self.assertIn("subject 'subject1' has no group 'stim'", msg)

    def test_props_rows_differ_from_group_width(self):
        small_data(self.path("d.h5"), **{"subjects/subject0/props/neurons": lambda p: p[:-3]})
        msg = self.fit_fails(self.path("d.h5"))
        self.assertRegex(msg, r"d\.h5: subject 'subject0': properties of group 'neurons' have \d+ rows, the group "
                              r"has \d+ variables")

    def test_nan_and_inf_name_subject_group_and_first_index(self):
        def poison(x, value):
            x[37, 2] = value
            x[50, 1] = value
            return x
        small_data(self.path("d.h5"), **{"subjects/subject1/groups/neurons": lambda x: poison(x, np.nan)})
        self.assertIn("subject 'subject1', group 'neurons' has a non-finite value (nan) at time 37, variable 2",
                      self.fit_fails(self.path("d.h5")))
        small_data(self.path("e.h5"), **{"subjects/subject0/groups/stim": lambda x: poison(x, -np.inf)})
        self.assertIn("subject 'subject0', group 'stim' has a non-finite value (-inf) at time 37, variable 2",
                      self.fit_fails(self.path("e.h5")))

    def test_checkpoint_of_a_different_model(self):
        small_data(self.path("d.h5"))
        mslr("fit", "--data", self.path("d.h5"), "--out", self.path("a"), "--epochs", 2, "--batches", 2)
        msg = self.fails("fit", "--resume", self.path("a"), "--out", self.path("b"), "--model.hidden", "16")
        self.assertIn("the checkpoint was written for a different model: 'hidden = 32,32' there, 'hidden = 16' here",
                      msg)
        self.assertFalse(os.path.exists(self.path("b", "checkpoints", "latest")))
        msg = self.fails("predict", "--checkpoint", self.path("a"), "--out", self.path("p.h5"),
                         "--model.activation", "relu")
        self.assertIn("different model", msg)
        self.assertFalse(os.path.exists(self.path("p.h5")))

    def test_unwritable_output_folder(self):
        small_data(self.path("d.h5"))
        with open(self.path("file"), "w") as f:
            f.write("x")
        msg = self.fails("fit", "--data", self.path("d.h5"), "--out", self.path("file", "run"), np=2)
        self.assertIn("cannot create the folder", msg)
        mslr("fit", "--data", self.path("d.h5"), "--out", self.path("a"), "--epochs", 1, "--batches", 2)
        msg = self.fails("predict", "--checkpoint", self.path("a"), "--out", self.path("file", "p.h5"), np=2)
        self.assertIn("cannot create the file", msg)

    def test_bad_options_and_config(self):
        small_data(self.path("d.h5"))
        self.assertEqual(self.fails("fit", "--data", self.path("d.h5"), "--epoch", 3, code=2),
                         "mslr fit: unrecognised option '--epoch' (see mslr fit --help)")
        self.assertIn("--epochs: 'ten' is not an integer",
                      self.fails("fit", "--data", self.path("d.h5"), "--out", self.path("r"), "--epochs", "ten", code=2))
        with open(self.path("bad.ini"), "w") as f:
            f.write("epochs = 3\nthis line is wrong\n")
        msg = self.fails("fit", "--config", self.path("bad.ini"), code=2)
        self.assertIn("bad.ini", msg)
        self.assertIn("this line is wrong", msg)
        with open(self.path("unknown.ini"), "w") as f:
            f.write("epochs = 3\n[model]\nhiden = 4\n")
        msg = self.fails("fit", "--config", self.path("unknown.ini"), code=2)
        self.assertIn("model.hiden", msg)
        self.assertIn("fewer than the 1000 minibatches asked for",
                      self.fails("fit", "--data", self.path("d.h5"), "--out", self.path("r"), "--batches", 1000))
        self.assertIn("mslr: unknown command 'fitt'", self.fails("fitt", code=2))

    def test_more_gpus_than_present(self):
        small_data(self.path("d.h5"))
        msg = self.fit_fails(self.path("d.h5"), "--gpus-per-rank", 1)
        # Refused for the LibTorch (a CPU build of it), or for the GPUs a CUDA LibTorch finds.
        self.assertTrue("--gpus-per-rank 1: this mslr was built against a LibTorch without CUDA" in msg
                        or "--gpus-per-rank 1 with 2 rank(s) on this node needs 2 GPU(s), but 0 are visible" in msg,
                        msg)

    def test_example_config_runs(self):
        small_data(self.path("d.h5"))
        jobs = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "jobs")
        mslr("fit", "--config", os.path.join(jobs, "fit.ini"), "--data", self.path("d.h5"), "--out", self.path("r"),
             "--epochs", 2, "--batches", 4)
        with open(self.path("r", "config.ini")) as f:
            saved = f.read()
        self.assertIn("input = neurons:predicted:8", saved)   # from the example's [model] section
        self.assertIn("epochs = 2", saved)                      # the command line wins over the file
        self.assertIn("lr-schedule = 0:0.01,150:0.003", saved)

    def test_every_subcommand_has_a_true_help(self):
        for cmd, options in (("simulate", ["--out", "--subjects ARG  [8]", "--neurons-min ARG  [300]", "--seed"]),
                             ("fit", ["--data", "--epochs ARG  [100]", "--batches ARG  [10]", "--lr-schedule",
                                      "--resume", "--gpus-per-rank ARG  [0]", "--model.hidden ARG  [32,32]",
                                      "--checkpoint-every ARG  [10]", "--keep-checkpoints ARG  [3]"]),
                             ("predict", ["--checkpoint", "--split ARG  [test]", "--batch-size ARG  [1000]"]),
                             ("eval", ["--predictions", "--json"]),
                             ("inspect", ["usage: mslr inspect file"])):
            out = mslr(cmd, "--help").stdout
            for o in options:
                self.assertIn(o, out, f"mslr {cmd} --help lacks {o}")
        self.assertIn("commands:", mslr("--help").stdout)


class Hostile(FailingRuns):
    """Hostile and malformed input, one kind of failure per test: each ends with one line of ours naming the file,
    subject, group or option, the documented exit status, no hang, no crash, and nothing half-written left."""

    def setUp(self):
        super().setUp()
        small_data(self.path("d.h5"))

    def variant(self, name, edit):
        """A copy of the valid data file with `edit(h5py.File)` applied."""
        return edited_copy(self.path("d.h5"), self.path(name), edit)

    def fit(self, out="a", *extra, np=None):
        mslr("fit", "--data", self.path("d.h5"), "--out", self.path(out), "--epochs", 3, "--batches", 2,
             "--checkpoint-every", 1, *extra, np=np)
        return self.path(out)

    def leftovers(self, folder):
        return [os.path.join(r, f) for r, _, fs in os.walk(folder) for f in fs if f.endswith(".tmp")]

    # 1
    def test_a_failed_write_exits_1_and_leaves_no_temporary(self):
        def limited(max_bytes):
            def limit():
                signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
                resource.setrlimit(resource.RLIMIT_FSIZE, (max_bytes, max_bytes))
            return limit
        # Open MPI's shared-memory store would itself hit the limit; its hash store writes no files.
        env = dict(ENV, PMIX_MCA_gds="hash")
        big = ["--subjects", 2, "--neurons-min", 200, "--neurons-max", 300, "--time-points", 1200]
        cases = [("simulate", ["simulate", "--out", self.path("s.h5"), *big], self.path("s.h5")),
                 ("fit", ["fit", "--data", self.path("d.h5"), "--out", self.path("run"), "--epochs", 2,
                          "--copy-data"], self.path("run", "checkpoints", "final.h5")),
                 ("predict", ["predict", "--checkpoint", self.fit(), "--split", "all", "--out", self.path("p.h5")],
                  self.path("p.h5"))]
        for name, args, output in cases:
            with self.subTest(name):
                p = subprocess.run([MSLR, *map(str, args)], env=env, capture_output=True, text=True, timeout=120,
                                   preexec_fn=limited({"simulate": 20000, "fit": 40000, "predict": 8000}[name]))
                self.assertEqual(p.returncode, 1, p.stderr)
                self.assertIn("File too large", p.stderr)
                self.assertNotIn("Segmentation", p.stderr)
                self.assertFalse(os.path.exists(output))
                self.assertEqual(self.leftovers(self.dir), [])

    def test_a_full_disk_on_two_ranks_keeps_the_last_checkpoint(self):
        tiny = self.path("tiny")
        os.mkdir(tiny)
        if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=120k", "tmpfs", tiny], capture_output=True).returncode:
            self.skipTest("cannot mount a small tmpfs here")
        try:
            msg = self.fails("fit", "--data", self.path("d.h5"), "--out", os.path.join(tiny, "run"), "--epochs", 4,
                             "--checkpoint-every", 1, "--copy-data", np=2)
            self.assertIn("No space left on device", msg)
            ckpts = os.path.join(tiny, "run", "checkpoints")
            self.assertEqual(self.leftovers(tiny), [])
            with h5py.File(os.path.join(ckpts, "latest"), "r") as f:
                self.assertEqual(int(f.attrs["complete"]), 1)
        finally:
            subprocess.run(["umount", tiny])

    # 2
    def test_links_to_other_files_are_refused_without_a_hang(self):
        def external(f):
            del f["subjects/subject1"]
            f["subjects/subject1"] = h5py.ExternalLink(self.path("d.h5"), "/subjects/subject1")

        def dangling(f):
            del f["subjects/subject1/groups/stim"]
            f["subjects/subject1/groups/stim"] = h5py.ExternalLink("nowhere.h5", "/x")

        def soft_to_external(f):
            f["elsewhere"] = h5py.ExternalLink("nowhere.h5", "/x")
            del f["subjects/subject0/props"]
            f["subjects/subject0/props"] = h5py.SoftLink("/elsewhere")
        run = self.fit()
        for edit, where in ((external, "/subjects/subject1"), (dangling, "/subjects/subject1/groups/stim"),
                            (soft_to_external, "/elsewhere")):
            data = self.variant(edit.__name__ + ".h5", edit)
            with self.subTest(edit.__name__):
                for args in (["fit", "--data", data, "--out", self.path("r"), "--epochs", 1],
                             ["predict", "--checkpoint", run, "--data", data, "--out", self.path("p.h5")]):
                    msg = self.fails(*args, np=2)
                    self.assertIn(f"{data}: {where} is a link to another file", msg)
        # A soft link inside the file is followed.
        def soft(f):
            f.move("subjects/subject1/props", "kept")
            f["subjects/subject1/props"] = h5py.SoftLink("/kept")
        mslr("fit", "--data", self.variant("soft.h5", soft), "--out", self.path("soft"), "--epochs", 1, np=2)

    # 3
    def test_declared_sizes_are_checked_against_what_the_file_stores(self):
        def huge(path, shape, **kw):
            def edit(f):
                del f[path]
                f.create_dataset(path, shape=shape, dtype="f4", **kw)
                if "chunks" in kw:
                    f[path][:10] = 1
            return edit
        for name, edit, says in (
                ("time", huge("subjects/subject1/groups/stim", (2**40, 4)),
                 "subject 'subject1', group 'stim' declares [1099511627776, 4] (16.0 TiB) but the file stores only 0 B"),
                ("chunked", huge("subjects/subject1/groups/stim", (2**40, 4), chunks=(1024, 4), compression="gzip"),
                 "subject 'subject1', group 'stim' declares [1099511627776, 4] (16.0 TiB) but the file stores only"),
                ("neurons", huge("subjects/subject0/props/neurons", (2**40, 3)),
                 "subject 'subject0', properties of group 'neurons' declares [1099511627776, 3] (12.0 TiB)"),
                ("props", huge("subjects/subject0/props/neurons", (25, 2**40)),
                 "subject 'subject0', properties of group 'neurons' declares")):
            with self.subTest(name):
                self.assertIn(says, self.fit_fails(self.variant(name + ".h5", edit)))

    # 4
    def test_resuming_a_copied_run_folder_writes_into_the_copy(self):
        a = self.fit()
        before = {f: os.path.getmtime(os.path.join(a, "checkpoints", f)) for f in os.listdir(os.path.join(a, "checkpoints"))}
        b = self.path("b")
        shutil.copytree(a, b, symlinks=True)
        mslr("fit", "--resume", b, "--epochs", 5, np=2)
        with h5py.File(os.path.join(b, "checkpoints", "final.h5"), "r") as f:
            self.assertEqual(int(f.attrs["epoch"]), 5)
        after = {f: os.path.getmtime(os.path.join(a, "checkpoints", f)) for f in os.listdir(os.path.join(a, "checkpoints"))}
        self.assertEqual(before, after)
        with open(os.path.join(b, "config.ini")) as f:
            self.assertNotIn("out =", f.read())
        # A checkpoint file outside a run folder needs --out.
        shutil.copy(os.path.join(a, "checkpoints", "final.h5"), self.path("loose.h5"))
        self.assertIn("--out is required", self.fails("fit", "--resume", self.path("loose.h5"), "--epochs", 5, code=2))

    # 5
    def test_outputs_never_replace_inputs_devices_or_finished_runs(self):
        run = self.fit()
        with open(self.path("d.h5"), "rb") as f:
            data = f.read()
        os.symlink(self.path("d.h5"), self.path("alias.h5"))
        os.mkfifo(self.path("fifo"))
        # A device of our own (the null device's numbers) in the scratch folder: should a regression replace
        # it, it replaces this node, never the system's /dev/null.
        devices = []
        try:
            os.mknod(self.path("null"), stat.S_IFCHR | 0o666, os.makedev(1, 3))
            devices = [(self.path("null"), "is a device")]
        except OSError:
            pass
        for out, says in ((self.path("d.h5"), "is the input"), (self.path("alias.h5"), "is the input"),
                          (os.path.join(run, "checkpoints", "final.h5"), "is the input"),
                          (self.path("fifo"), "is a FIFO"), (self.dir, "is a folder"), *devices):
            with self.subTest(out):
                msg = self.fails("predict", "--checkpoint", run, "--out", out, np=2)
                self.assertIn(f"--out {out} {says}", msg)
        self.assertIn(f"{self.path('fifo')} is a FIFO", self.fails("simulate", "--out", self.path("fifo")))
        for device, says in devices:
            self.assertIn(f"{device} {says}", self.fails("simulate", "--out", device))
        self.assertIn(f"{self.path('fifo')}: is not a regular file",
                      self.fails("predict", "--checkpoint", self.path("fifo"), "--out", self.path("x.h5")))
        # An existing file is replaced only by an output of its own kind: predictions by predictions, simulated
        # data by simulated data; recorded data and checkpoints never.
        recorded = self.variant("recorded.h5", lambda f: f.attrs.__delitem__("simulate"))
        self.assertIn(f"--out {recorded} exists and is not an mslr predictions file",
                      self.fails("predict", "--checkpoint", run, "--out", recorded))
        self.assertIn(f"--out {recorded} exists and is not a simulated data file",
                      self.fails("simulate", "--out", recorded))
        final = os.path.join(run, "checkpoints", "final.h5")
        self.assertIn("exists and is not a simulated data file", self.fails("simulate", "--out", final))
        mslr("predict", "--checkpoint", run, "--out", self.path("p.h5"))
        mslr("predict", "--checkpoint", run, "--out", self.path("p.h5"), "--split", "all")
        small_data(self.path("d2.h5"))
        small_data(self.path("d2.h5"))
        with open(self.path("d.h5"), "rb") as f:
            self.assertEqual(f.read(), data)
        self.assertTrue(stat.S_ISFIFO(os.stat(self.path("fifo")).st_mode))
        # A finished run is continued or explicitly overwritten, never silently replaced.
        msg = self.fails("fit", "--data", self.path("d.h5"), "--out", run, "--epochs", 1, code=2)
        self.assertIn(f"--out {run} already holds a fit; continue it with --resume {run}, or start afresh there "
                      "with --overwrite", msg)
        mslr("fit", "--data", self.path("d.h5"), "--out", run, "--epochs", 1, "--overwrite")
        self.assertEqual(sorted(os.listdir(os.path.join(run, "checkpoints"))), ["final.h5", "latest"])

    # 6
    def test_checkpoint_contents_are_validated(self):
        run = self.fit(np=2)
        final = os.path.join(run, "checkpoints", "final.h5")

        def replace(path, fn):
            def edit(f):
                x = f[path][...]
                del f[path]
                f[path] = fn(x)
            return edit

        def set_value(path, index, value):
            def edit(f):
                x = f[path][...]
                x[index] = value
                f[path][...] = x
            return edit

        def attr(name, value):
            return lambda f: f.attrs.__setitem__(name, value)
        cases = [("short-log", replace("log/objective", lambda x: x[:1]), "/log/objective is [1], expected [3]", True),
                 ("long-nll", replace("log/subject_nll", lambda x: np.zeros((x.shape[0] + 5, x.shape[1]))),
                  "log/subject_nll is [8, 2], expected [3, 2]", True),
                 ("flat-log", replace("log/subject_nll", lambda x: x.ravel()), "log/subject_nll is [6], expected [3, 2]",
                  True),
                 ("negative-epoch", attr("epoch", -5), "attribute 'epoch' of / is -5, outside [0, 1000000000]", True),
                 ("huge-epoch", attr("epoch", 2**40), "attribute 'epoch' of / is 1099511627776", True),
                 ("nan-params", set_value("subjects/subject1/params", 3, np.nan),
                  "/subjects/subject1/params has a non-finite value (nan) at index 3", True),
                 ("inf-shared", set_value("shared/params", 7, np.inf),
                  "/shared/params has a non-finite value (inf) at index 7", True),
                 ("bad-shape", lambda f: f["shared"].attrs.__setitem__("param_shapes", "3,x;"),
                  "the shared parameters: parameter", True),
                 ("fitted-index", set_value("log/fitted", 0, 99), "/log/fitted[0] = 99 is not a subject index", False),
                 ("negative-v", set_value("shared/adam_v", 2, -1.0), "/shared/adam_v has a negative value", False),
                 ("short-params", replace("subjects/subject0/params", lambda x: x[:-2]),
                  "/subjects/subject0/params is [", True)]
        for name, edit, says, predict_reads_it in cases:
            with self.subTest(name):
                bad = edited_copy(final, self.path(name + ".h5"), edit)
                msg = self.fails("fit", "--resume", bad, "--out", self.path("r-" + name), "--epochs", 5, np=2)
                self.assertIn(f"{bad}: {says}", msg)
                if predict_reads_it:
                    self.assertIn(says, self.fails("predict", "--checkpoint", bad, "--out", self.path("p.h5"), np=2))

    # 7
    def test_eval_checks_predictions_against_the_data(self):
        run = self.fit()
        mslr("predict", "--checkpoint", run, "--out", self.path("p.h5"))

        def variant(name, edit):
            return edited_copy(self.path("p.h5"), self.path(name + ".h5"), edit)

        def narrow(f):
            x = f["subjects/subject0/neurons"][...]
            del f["subjects/subject0/neurons"]
            f["subjects/subject0/neurons"] = x[:, :1]

        def time_beyond(f):
            f["subjects/subject1/times"][3] = 10**6
        for name, edit, says in (
                ("narrow", narrow, "subject 'subject0': predictions of group 'neurons' have 1 variables, the data has"),
                ("samples", lambda f: f["subjects/subject1"].attrs.__setitem__("samples", 5),
                 "subject 'subject1': 'times' is [23], the 'samples' attribute says 5"),
                ("times", time_beyond, "subject 'subject1' has times in ["),
                ("group", lambda f: f.__setitem__("subjects/subject1/other", f["subjects/subject1/neurons"][...]),
                 "subject 'subject1' predicts group 'other', which"),
                ("nll", lambda f: (f.__delitem__("subjects/subject1/nll"),
                                   f.__setitem__("subjects/subject1/nll", np.zeros(3))),
                 "subject 'subject1': 'nll' must be a single value, is [3]")):
            with self.subTest(name):
                self.assertIn(says, self.fails("eval", "--predictions", variant(name, edit)))

    # 8
    def test_names_and_non_finite_numbers_make_valid_json(self):
        names = ['fish "A"', "back\\slash", "new\nline", "tab\there"]
        rng = np.random.default_rng(1)
        with h5py.File(self.path("named.h5"), "w") as f:
            f.attrs["format"] = "mslr-data"
            f.attrs["version"] = 1
            for n in names:
                f[f"subjects/{n}/groups/stim"] = rng.normal(size=(80, 2)).astype("f4")
                f[f"subjects/{n}/groups/neurons"] = rng.normal(size=(80, 6)).astype("f4")
        mslr("fit", "--data", self.path("named.h5"), "--out", self.path("run"), "--epochs", 2, "--batches", 2,
             "--model.input", "stim:fixed:2", "--model.output", "neurons:owned", np=2)
        with open(self.path("run", "metrics.jsonl")) as f:
            entries = [json.loads(line) for line in f]
        self.assertEqual(sorted(entries[-1]["subject_nll"]), sorted(names))
        mslr("predict", "--checkpoint", self.path("run"), "--out", self.path("p.h5"))
        scores = json.loads(mslr("eval", "--predictions", self.path("p.h5"), "--json").stdout)
        self.assertEqual(sorted(scores["subjects"]), sorted(names))
        self.assertIsNone(scores["pooled"]["r2_true"])  # no noise-free means in this file: null, not nan

    # 9
    def test_bad_values_are_refused(self):
        run = self.fit()
        def float_segments(f):
            f["subjects/subject1/segments"] = np.array([[0, 50.7], [60, 120]])

        def subject_named_1(f):
            f.move("subjects/subject0", "subjects/1")
        cases = [(["--lr", "-1"], "--lr must be a positive number, got -1"),
                 (["--lr", "nan"], "--lr: 'nan' is not a finite number"),
                 (["--lr", "inf"], "--lr: 'inf' is not a finite number"),
                 (["--lr-schedule", "0:0.01,5:-1"], "learning rate at epoch 5 must be a positive number"),
                 (["--model.init-std", "nan"], "--model.init-std: 'nan' is not a finite number"),
                 (["--config", self.dir], f"--config {self.dir}: is not a file"),
                 (["--seed", "-1"], "--seed must be >= 0, got -1"),
                 (["--subjects", ",,"], "--subjects: ',,' names no subject"),
                 (["--model.cube-side", "0"], "cube-side must be >= 1, got 0"),
                 (["--model.activation", "prelu"], "activation prelu needs a learned slope")]
        for extra, says in cases:
            with self.subTest(extra):
                self.assertIn(says, self.fit_fails(self.path("d.h5"), *extra, code=2))
        self.assertIn("subject 'subject1', 'segments' holds floating-point numbers; it must hold integers",
                      self.fit_fails(self.variant("seg.h5", float_segments)))
        msg = self.fit_fails(self.variant("named.h5", subject_named_1), "--subjects", "1", code=2)
        self.assertIn("--subjects: '1' is both the name of subject 0 and the index of subject 'subject1': write 0 "
                      "for the first or subject1 for the second", msg)
        self.assertIn("--gpus-per-rank must be in 0..64",
                      self.fails("predict", "--checkpoint", run, "--out", self.path("p.h5"), "--gpus-per-rank", -1,
                                 code=2))
        # predict runs on GPUs too: here, without them, it says why it cannot.
        msg = self.fails("predict", "--checkpoint", run, "--out", self.path("p.h5"), "--gpus-per-rank", 1, code=1)
        self.assertTrue("built against a LibTorch without CUDA" in msg or "GPU(s), but 0 are visible" in msg, msg)

    # 10
    def test_our_messages_not_the_libraries(self):
        def no_variables(f):
            del f["subjects/subject1/groups/neurons"], f["subjects/subject1/props/neurons"]
            f["subjects/subject1/groups/neurons"] = np.zeros((120, 0), "f4")
            f["subjects/subject1/props/neurons"] = np.zeros((0, 3), "f4")

        def beyond_float32(f):
            x = f["subjects/subject1/groups/neurons"][...].astype("f8")
            x[5, 3] = 1e39
            del f["subjects/subject1/groups/neurons"]
            f["subjects/subject1/groups/neurons"] = x

        def bad_model(f):
            f.attrs["model"] = "input = stim:fixed:4\nthis is not a setting\n"
        self.assertIn("subject 'subject1', group 'neurons' is [120, 0]: it needs at least one time point and one "
                      "variable", self.fit_fails(self.variant("empty.h5", no_variables)))
        self.assertIn("/subjects/subject1/groups/neurons holds a value beyond the range of float32",
                      self.fit_fails(self.variant("big.h5", beyond_float32)))
        self.assertIn("the 'model' attribute: the options configuration file contains an invalid line 'this is not a "
                      "setting'", self.fit_fails(self.variant("model.h5", bad_model), code=2))

    # 11
    def test_bad_option_values_exit_2(self):
        for extra, says in ((["--model.hidden", "-5"], "hidden must be >= 1, got -5"),
                            (["--model.predictor", "hypercube", "--model.divisions", "0"],
                             "divisions must be >= 1, got 0"),
                            (["--model.range-lo", "", "--model.range-hi", ""], "range-lo and range-hi need"),
                            (["--model.range-lo", "1", "--model.range-hi", "0"], "range-lo 1 must be below range-hi 0"),
                            (["--checkpoint-epochs", "a,b"], "--checkpoint-epochs: 'a' is not an epoch number")):
            with self.subTest(extra):
                self.assertIn(says, self.fit_fails(self.path("d.h5"), *extra, code=2))

    # 12
    def test_messages_name_file_subject_and_group(self):
        def replace_stim(value):
            def edit(f):
                del f["subjects/subject1/groups/stim"]
                if value is None:
                    f.create_group("subjects/subject1/groups/stim")
                else:
                    f["subjects/subject1/groups/stim"] = value
            return edit
        for name, value, says in (
                ("group", None, "is a group, not a dataset"),
                ("strings", np.array([b"a", b"b"]), "holds strings, not numbers"),
                ("compound", np.zeros((120,), dtype=[("a", "f4"), ("b", "f4")]), "holds compound records, not numbers")):
            with self.subTest(name):
                data = self.variant(name + ".h5", replace_stim(value))
                self.assertIn(f"{data}: subject 'subject1', group 'stim' {says}", self.fit_fails(data))


class DataTool(ScratchTest):
    def test_writes_files_mslr_reads_and_checks_bad_ones(self):
        import mslr_data
        rng = np.random.default_rng(0)
        subjects = {f"fish{i}": {"groups": {"stim": rng.normal(size=(200, 2)), "neurons": rng.normal(size=(200, 15))},
                                 "props": {"neurons": rng.uniform(size=(15, 3))},
                                 "segments": [[0, 120], [120, 200]]} for i in range(2)}
        mslr_data.write(self.path("d.h5"), subjects)
        self.assertEqual(mslr_data.check(self.path("d.h5")), [])
        out = mslr("inspect", self.path("d.h5")).stdout
        self.assertIn("fish1: neurons [200, 15] stim [200, 2], props/neurons [15, 3], 2 segments", out)
        mslr("fit", "--data", self.path("d.h5"), "--out", self.path("run"), "--epochs", 2, "--batches", 4,
             "--model.input", "stim:fixed:2", "--model.input", "neurons:predicted:2",
             "--model.output", "neurons:predicted")
        with h5py.File(self.path("d.h5"), "a") as f:
            f["subjects/fish0/groups/neurons"][3, 4] = np.nan
            f.attrs["format"] = "nope"
        problems = mslr_data.check(self.path("d.h5"))
        self.assertIn("format attribute is 'nope'", problems[0])
        self.assertIn("subject 'fish0', group 'neurons': non-finite value at time 3, variable 4", problems[1])
        with self.assertRaisesRegex(ValueError, "subject 'x': properties of group 'neurons' have 3 rows, the group "
                                                "has 15 variables"):
            mslr_data.write(self.path("e.h5"), {"x": {"groups": {"neurons": np.zeros((5, 15))},
                                                      "props": {"neurons": np.zeros((3, 3))}}})
        self.assertFalse(os.path.exists(self.path("e.h5")))
        p = tool("mslr_data.py", "check", self.path("run", "checkpoints", "final.h5"), check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("format attribute is 'mslr-checkpoint', expected 'mslr-data'", p.stdout)


if __name__ == "__main__":
    unittest.main(verbosity=2)
