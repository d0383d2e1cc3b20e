"""Bad input through the real binary: one clear line naming the file, subject, group or option, a non-zero exit,
no hang, and no output file that looks complete. Also every subcommand's --help."""
import os
import unittest

import h5py
import numpy as np

from helpers import ScratchTest, mslr, tool


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


class Errors(ScratchTest):
    def fails(self, *args, code=1, np=None):
        """Runs mslr, expects exit status `code` and returns stderr (one line)."""
        p = mslr(*args, np=np, check=False, timeout=120)
        self.assertEqual(p.returncode, code, f"mslr {' '.join(map(str, args))}\n{p.stdout}\n{p.stderr}")
        lines = [line for line in p.stderr.splitlines() if line.startswith("mslr")]
        self.assertTrue(lines, p.stderr)
        return lines[0]

    def fit_fails(self, data, *extra, np=2, code=1):
        out = self.path("run")
        msg = self.fails("fit", "--data", data, "--out", out, "--epochs", 2, *extra, np=np, code=code)
        # Nothing under the run folder that looks like a checkpoint.
        ckpts = os.path.join(out, "checkpoints")
        self.assertFalse(os.path.exists(ckpts) and [x for x in os.listdir(ckpts) if x.endswith(".h5")])
        return msg

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
        self.assertIn("--gpus-per-rank 1 with 2 rank(s) on this node needs 2 GPU(s), but 0 are visible", msg)

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


class DataTool(ScratchTest):
    def test_writes_files_mslr_reads_and_checks_bad_ones(self):
        import sys
        sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "tools"))
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
