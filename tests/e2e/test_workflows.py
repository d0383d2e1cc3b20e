"""What scientists do with a fitted model, through the real binary: per-group model options, per-subject
splits from the data file, predicting from a checkpoint alone, given modes, warm starts with frozen parts, and
generation and latents."""
import os
import unittest

import h5py
import numpy as np

import subprocess

from helpers import PYTHON, TOOLS, ScratchTest, final_params, mslr


def simulate(path, subjects=3, seed=1, time_points=300):
    mslr("simulate", "--out", path, "--subjects", subjects, "--neurons-min", 40, "--neurons-max", 70,
         "--time-points", time_points, "--seed", seed)


def names_and_shapes(group):
    names = group.attrs["param_names"].split("\n")
    shapes = group.attrs["param_shapes"].split(";")
    return dict(zip(names, shapes))


class PerGroupModelOptions(ScratchTest):
    def test_each_group_gets_its_own_predictor_and_output_options(self):
        simulate(self.path("d.h5"))
        mslr("fit", "--data", self.path("d.h5"), "--out", self.path("run"), "--epochs", 2, "--quiet",
             "--model.group", "neurons.hidden=8", "--model.group", "u.neurons.predictor=hypercube",
             "--model.group", "neurons.scales=true")
        with h5py.File(self.path("run", "checkpoints", "final.h5"), "r") as f:
            shared = names_and_shapes(f["shared"])
            subject = names_and_shapes(f["subjects/subject0"])
        # p.neurons: an MLP with one hidden layer of 8; u.neurons: a hypercube; the global stim stays fixed.
        self.assertEqual(shared["pred.p.neurons.w0"], "3,8")
        self.assertNotIn("pred.p.neurons.w2", shared)
        self.assertIn("pred.u.neurons.values", shared)
        self.assertIn("scale.neurons", subject)
        # The settings are part of the saved config: a resume takes them (and would refuse other ones).
        mslr("fit", "--resume", self.path("run"), "--epochs", 3, "--quiet")
        with open(self.path("run", "config.ini")) as f:
            self.assertIn("group = neurons.hidden=8", f.read())

    def test_bad_group_settings_are_refused_with_their_reason(self):
        simulate(self.path("d.h5"))
        for setting, message in [
            ("fish.hidden=3", "'fish.hidden=3' names no input or output group of the model"),
            ("neurons.colour=3", "'neurons.colour=3' sets no known key"),
            ("neurons.hidden=x", "'x' in 'neurons.hidden=x' is not a number"),
            ("neurons.scales=maybe", "'neurons.scales=maybe' is not true or false"),
            ("neurons.activation=prelu", "activation prelu needs a learned slope"),
        ]:
            p = mslr("fit", "--data", self.path("d.h5"), "--out", self.path("run"), "--model.group", setting,
                     check=False)
            self.assertEqual(p.returncode, 2, p.stderr)
            self.assertIn(message, p.stderr)
        p = mslr("fit", "--data", self.path("d.h5"), "--out", self.path("run"), "--model.activation", "prelu",
                 check=False)
        self.assertEqual(p.returncode, 2)
        self.assertIn("activation prelu needs a learned slope", p.stderr)


def add_split(path, subject, train, test):
    with h5py.File(path, "a") as f:
        g = f[f"subjects/{subject}"]
        if "split" in g:
            del g["split"]
        for part, x in (("train", train), ("test", test)):
            x = np.asarray(x)
            g["split/" + part] = x.astype(np.uint8) if x.ndim == 1 else x.astype(np.int64)


class PerSubjectSplits(ScratchTest):
    def test_splits_from_the_data_file_are_the_ones_fitted_and_predicted(self):
        data = self.path("d.h5")
        simulate(data)
        mask = np.zeros(300, dtype=bool)
        mask[:200] = True
        add_split(data, "subject0", [[0, 200]], [[200, 300]])
        add_split(data, "subject1", [[0, 200]], [[200, 250], [250, 300]])
        add_split(data, "subject2", mask, ~mask)  # as 0/1 masks
        common = ["--epochs", 3, "--quiet", "--checkpoint-every", 0]
        mslr("fit", "--data", data, "--out", self.path("a"), "--split-from-data", *common)
        mslr("fit", "--data", data, "--out", self.path("b"), "--train-range", "0:200", "--test-range", "200:300",
             *common)
        with h5py.File(self.path("a/checkpoints/final.h5"), "r") as a, \
                h5py.File(self.path("b/checkpoints/final.h5"), "r") as b:
            self.assertTrue(np.array_equal(a["shared/params"][...], b["shared/params"][...]))
            for s in ("subject0", "subject1", "subject2"):
                self.assertTrue(np.array_equal(a[f"subjects/{s}/params"][...], b[f"subjects/{s}/params"][...]), s)

    def test_a_middle_fold_is_trained_around_and_tested_inside(self):
        data = self.path("d.h5")
        simulate(data)
        for s in ("subject0", "subject1"):
            add_split(data, s, [[0, 100], [200, 300]], [[100, 200]])
        fold = np.zeros(300, dtype=bool)
        fold[100:200] = True
        add_split(data, "subject2", ~fold, fold)
        mslr("fit", "--data", data, "--out", self.path("run"), "--split-from-data", "--epochs", 2, "--quiet")
        for which, times in (("test", list(range(101, 200))),
                             ("train", list(range(1, 100)) + list(range(201, 300)))):
            out = self.path(f"{which}.h5")
            mslr("predict", "--checkpoint", self.path("run"), "--out", out, "--split", which, "--quiet")
            with h5py.File(out, "r") as f:
                for s in ("subject0", "subject1", "subject2"):
                    self.assertEqual(list(f[f"subjects/{s}/times"][...]), times, f"{which} {s}")

    def test_a_missing_or_bad_split_is_named(self):
        data = self.path("d.h5")
        simulate(data)
        add_split(data, "subject0", [[0, 200]], [[200, 300]])
        p = mslr("fit", "--data", data, "--out", self.path("run"), "--split-from-data", check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("subject 'subject1' has no split in the data file", p.stderr)
        p = mslr("fit", "--data", data, "--out", self.path("run2"), "--split-from-data", "--train-range", "0:9",
                 "--test-range", "9:20", check=False)
        self.assertEqual(p.returncode, 2)
        self.assertIn("leave out --train-range and --test-range", p.stderr)
        # A subject left out of the fit needs none.
        mslr("fit", "--data", data, "--out", self.path("run"), "--split-from-data", "--subjects", "subject0",
             "--epochs", 1, "--quiet")
        bad = np.ones(300, dtype=np.int64)
        bad[7] = 2
        add_split(data, "subject1", bad, 1 - bad)
        p = mslr("fit", "--data", data, "--out", self.path("run2"), "--split-from-data", check=False)
        self.assertIn("subject 'subject1', split/train is a mask and must hold 0 or 1, holds 2 at time 7", p.stderr)
        add_split(data, "subject1", [[100, 200], [0, 50]], [[200, 300]])
        p = mslr("fit", "--data", data, "--out", self.path("run2"), "--split-from-data", check=False)
        self.assertIn("split/train: range 1 [0, 50) must be non-empty, after the previous one", p.stderr)


class PredictFromTheCheckpointAlone(ScratchTest):
    def test_a_checkpoint_with_copied_data_predicts_after_the_data_file_is_gone(self):
        data = self.path("d.h5")
        simulate(data, subjects=3)
        add_split(data, "subject1", [[0, 150], [250, 300]], [[150, 250]])  # its own split travels too
        for s in ("subject0", "subject2"):
            add_split(data, s, [[0, 240]], [[240, 300]])
        mslr("fit", "--data", data, "--out", self.path("run"), "--epochs", 3, "--copy-data", "--split-from-data",
             "--quiet", np=2)
        mslr("predict", "--checkpoint", self.path("run"), "--out", self.path("with-file.h5"), "--data", data)
        os.rename(data, self.path("moved.h5"))
        for np_ in (1, 2):
            p = mslr("predict", "--checkpoint", self.path("run"), "--out", self.path(f"alone{np_}.h5"), np=np_)
            self.assertIn("from the data copied into the checkpoint", p.stdout)
        with h5py.File(self.path("with-file.h5"), "r") as a:
            for np_ in (1, 2):
                with h5py.File(self.path(f"alone{np_}.h5"), "r") as b:
                    self.assertEqual(sorted(a["subjects"]), sorted(b["subjects"]))
                    for s in a["subjects"]:
                        for k in ("times", "neurons", "nll"):
                            self.assertTrue(np.array_equal(a[f"subjects/{s}/{k}"][()], b[f"subjects/{s}/{k}"][()]),
                                            f"{s}/{k}")
            self.assertEqual(list(a["subjects/subject1/times"][...]), list(range(151, 250)))
        # Without copies and without the data file, predict says what is missing.
        mslr("fit", "--data", self.path("moved.h5"), "--out", self.path("plain"), "--epochs", 1, "--quiet")
        os.remove(self.path("moved.h5"))
        p = mslr("predict", "--checkpoint", self.path("plain"), "--out", self.path("p.h5"), check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("moved.h5", p.stderr)

    def test_a_subject_never_fitted_is_predicted_only_from_parts_that_mean_something(self):
        data = self.path("d.h5")
        simulate(data, subjects=3)
        mslr("fit", "--data", data, "--out", self.path("run"), "--epochs", 1, "--subjects", "0,1", "--quiet",
             "--model.input", "stim:owned:2", "--model.input", "neurons:predicted:4", "--model.output",
             "neurons:predicted")
        p = mslr("predict", "--checkpoint", self.path("run"), "--out", self.path("p.h5"), check=False)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("subject 'subject2' was never fitted, and its model has parameters that only a fit gives "
                      "(p.stim)", p.stderr)
        self.assertFalse(os.path.exists(self.path("p.h5")))


def add_modes(path, subject, name, modes):
    with h5py.File(path, "a") as f:
        g = f[f"subjects/{subject}"]
        if "modes/" + name in g:
            del g["modes/" + name]
        g["modes/" + name] = np.asarray(modes, dtype=np.float32)


class GivenModes(ScratchTest):
    MODEL = ["--model.input", "stim:given:4", "--model.input", "neurons:predicted:4",
             "--model.output", "neurons:predicted"]

    def test_given_identity_modes_fit_as_the_fixed_identity_does(self):
        data = self.path("d.h5")
        simulate(data)
        for s in ("subject0", "subject1", "subject2"):
            add_modes(data, s, "stim", np.eye(4))
        common = ["--data", data, "--epochs", 3, "--quiet", "--model.input", "neurons:predicted:4",
                  "--model.output", "neurons:predicted"]
        mslr("fit", "--out", self.path("given"), "--model.input", "stim:given:4", *common)
        mslr("fit", "--out", self.path("fixed"), "--model.input", "stim:fixed:4", *common)
        a, b = final_params(self.path("given/checkpoints/final.h5")), final_params(self.path("fixed/checkpoints/final.h5"))
        for k in a:
            self.assertTrue(np.array_equal(a[k], b[k]), k)

    def test_each_subject_uses_its_own_given_modes_in_fit_checkpoint_and_predict(self):
        data = self.path("d.h5")
        simulate(data)
        rng = np.random.default_rng(0)
        given = {s: rng.normal(size=(4, 4)) for s in ("subject0", "subject1", "subject2")}
        for s, m in given.items():
            add_modes(data, s, "p.stim", m)  # by slot name
        mslr("fit", "--data", data, "--out", self.path("run"), "--epochs", 3, "--quiet", "--copy-data",
             "--subjects", "0,1", *self.MODEL, np=2)
        with h5py.File(self.path("run/checkpoints/final.h5"), "r") as f:
            for s in ("subject0", "subject1"):
                self.assertTrue(np.allclose(f[f"subjects/{s}/modes/p.stim"][...], given[s], rtol=1e-6), s)
        # Predicted from the data file (subject2 never fitted: its given modes come from there too) and from
        # the checkpoint's copies alone: the same numbers for the fitted subjects.
        mslr("predict", "--checkpoint", self.path("run"), "--out", self.path("file.h5"), "--data", data)
        mslr("predict", "--checkpoint", self.path("run"), "--out", self.path("copy.h5"))
        with h5py.File(self.path("file.h5"), "r") as a, h5py.File(self.path("copy.h5"), "r") as b:
            self.assertIn("subject2", a["subjects"])
            for s in ("subject0", "subject1"):
                self.assertTrue(np.array_equal(a[f"subjects/{s}/neurons"][...], b[f"subjects/{s}/neurons"][...]))
        # Other given modes give other predictions: the modes are used, not ignored.
        add_modes(data, "subject0", "p.stim", -given["subject0"])
        mslr("predict", "--checkpoint", self.path("run"), "--out", self.path("flipped.h5"), "--data", data)
        with h5py.File(self.path("file.h5"), "r") as a, h5py.File(self.path("flipped.h5"), "r") as b:
            self.assertFalse(np.allclose(a["subjects/subject0/neurons"][...], b["subjects/subject0/neurons"][...]))

    def test_missing_or_misshapen_given_modes_are_named(self):
        data = self.path("d.h5")
        simulate(data)
        add_modes(data, "subject0", "stim", np.eye(4))
        p = mslr("fit", "--data", data, "--out", self.path("run"), *self.MODEL, check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("has no given modes for input group 'stim' (modes/stim or modes/p.stim in its data, [4, 4])",
                      p.stderr)
        for s in ("subject1", "subject2"):
            add_modes(data, s, "stim", np.ones((4, 3)))
        p = mslr("fit", "--data", data, "--out", self.path("run"), *self.MODEL, check=False)
        self.assertIn("fixed modes of input group 'stim' have shape [4, 3], expected [4, 4]", p.stderr)
        add_modes(data, "subject1", "fish", np.ones((4, 4)))
        p = mslr("fit", "--data", data, "--out", self.path("run"), *self.MODEL, check=False)
        self.assertIn("subject 'subject1', given modes 'fish' name no group of the subject", p.stderr)


def split_file(source, parts):
    """Writes each {path: [subject indices]} of `source` as its own mslr-data file (its attributes too)."""
    with h5py.File(source, "r") as a:
        for path, subjects in parts.items():
            with h5py.File(path, "w") as b:
                for k, v in a.attrs.items():
                    b.attrs[k] = v
                for i in subjects:
                    a.copy(f"subjects/subject{i}", b, f"subjects/subject{i}")


class WarmStartsAndFrozenParts(ScratchTest):
    @classmethod
    def setUpClass(cls):
        import tempfile
        cls.shared = tempfile.mkdtemp(prefix="mslr-e2e-warm-")
        d = cls.shared
        mslr("simulate", "--out", f"{d}/all.h5", "--subjects", 8, "--neurons-min", 40, "--neurons-max", 70,
             "--time-points", 600, "--seed", 5)
        split_file(f"{d}/all.h5", {f"{d}/old.h5": range(6), f"{d}/new.h5": (6, 7)})
        cls.rate = ["--epochs", 60, "--lr-schedule", "0:0.01,45:0.003", "--checkpoint-every", 0]
        mslr("fit", "--data", f"{d}/old.h5", "--out", f"{d}/old", "--quiet", *cls.rate)
        mslr("fit", "--data", f"{d}/all.h5", "--out", f"{d}/joint", "--quiet", *cls.rate)

    @classmethod
    def tearDownClass(cls):
        import shutil
        shutil.rmtree(cls.shared, ignore_errors=True)

    def final(self, run):
        return final_params(os.path.join(run, "checkpoints", "final.h5"))

    def r2(self, run, out):
        import json
        mslr("predict", "--checkpoint", run, "--out", out, "--quiet")
        return json.loads(mslr("eval", "--predictions", out, "--json").stdout)["subjects"]

    def test_new_subjects_fitted_onto_frozen_predictors(self):
        d = self.shared
        p = mslr("fit", "--data", f"{d}/new.h5", "--out", self.path("new"), "--init-from", f"{d}/old",
                 "--freeze", "shared", *self.rate, np=2)
        self.assertIn("starting from", p.stdout)
        old, new = self.final(f"{d}/old"), self.final(self.path("new"))
        self.assertTrue(np.array_equal(old["shared"], new["shared"]), "the frozen shared parameters moved")
        with h5py.File(self.path("new", "checkpoints", "final.h5"), "r") as f:
            self.assertFalse(f["shared/adam_m"][...].any(), "frozen parts have Adam state")
        # The new subjects are predicted about as well as by a joint fit of all eight.
        alone, joint = self.r2(self.path("new"), self.path("p.h5")), self.r2(f"{d}/joint", self.path("j.h5"))
        for s in ("subject6", "subject7"):
            print(f"\n  {s}: held-out R² against the true means {alone[s]['r2_true']:.4f} onto frozen "
                  f"predictors, {joint[s]['r2_true']:.4f} in a joint fit", end="")
            self.assertGreater(alone[s]["r2_true"], joint[s]["r2_true"] - 0.05)
        # The same subjects fitted from the whole file (the others held at the values the old fit gave them),
        # on one rank: the same numbers bit for bit.
        mslr("fit", "--data", f"{d}/all.h5", "--out", self.path("subset"), "--init-from", f"{d}/old",
             "--freeze", "shared", "--subjects", "6,7", "--quiet", *self.rate)
        subset = self.final(self.path("subset"))
        for s in ("subject6", "subject7"):
            self.assertTrue(np.array_equal(new[s], subset[s]), s)
        for s in ("subject0", "subject5"):
            self.assertTrue(np.array_equal(old[s], subset[s]), s)

    def test_freezing_one_kind_holds_it_and_moves_the_rest(self):
        d = self.shared
        p = mslr("fit", "--data", f"{d}/new.h5", "--out", self.path("run"), "--init-from", f"{d}/old",
                 "--freeze", "p-predictors,psi", "--epochs", 3, "--checkpoint-every", 0)
        self.assertRegex(p.stdout, r"frozen: p-predictors,psi \(the step all-reduces \d+ of \d+ shared values\)")
        with h5py.File(f"{d}/old/checkpoints/final.h5", "r") as a, \
                h5py.File(self.path("run", "checkpoints", "final.h5"), "r") as b:
            names, offsets = b["shared"].attrs["param_names"].split("\n"), b["shared"].attrs["param_offsets"]
            offsets = list(offsets) + [len(b["shared/params"])]
            for name, lo, hi in zip(names, offsets, offsets[1:]):
                same = np.array_equal(a["shared/params"][lo:hi], b["shared/params"][lo:hi])
                self.assertEqual(same, name.startswith("pred.p."), name)
            sub = b["subjects/subject6"]
            names = sub.attrs["param_names"].split("\n")
            self.assertIn("psi.neurons", names)
            # psi stays at its starting value (these subjects are new: psi-init).
            i = names.index("psi.neurons")
            offsets = list(sub.attrs["param_offsets"]) + [len(sub["params"])]
            psi = sub["params"][offsets[i]:offsets[i + 1]]
            self.assertTrue(np.all(psi == 1.0))

    def test_a_frozen_fit_resumes_exactly(self):
        d = self.shared
        common = ["--data", f"{d}/new.h5", "--init-from", f"{d}/old", "--freeze", "shared,psi", "--quiet",
                  "--checkpoint-every", 0]
        mslr("fit", "--out", self.path("whole"), "--epochs", 12, *common)
        mslr("fit", "--out", self.path("parts"), "--epochs", 5, *common)
        mslr("fit", "--resume", self.path("parts"), "--epochs", 12, "--quiet")
        whole, parts = self.final(self.path("whole")), self.final(self.path("parts"))
        for k in whole:
            self.assertTrue(np.array_equal(whole[k], parts[k]), k)

    def test_bad_requests_are_refused(self):
        d = self.shared
        p = mslr("fit", "--data", f"{d}/new.h5", "--out", self.path("run"), "--freeze", "brains", check=False)
        self.assertEqual(p.returncode, 2)
        self.assertIn("freeze: 'brains' is not a kind of parameter (shared,p-predictors", p.stderr)
        p = mslr("fit", "--data", f"{d}/new.h5", "--out", self.path("run"), "--init-from", f"{d}/old",
                 "--model.hidden", "5", check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("its shared parameters differ from this model's", p.stderr)
        p = mslr("fit", "--init-from", f"{d}/old", "--resume", f"{d}/old", check=False)
        self.assertEqual(p.returncode, 2)
        self.assertIn("give one of them", p.stderr)


class GenerateAndLatents(ScratchTest):
    @classmethod
    def setUpClass(cls):
        import tempfile
        cls.shared = tempfile.mkdtemp(prefix="mslr-e2e-generate-")
        d = cls.shared
        simulate(f"{d}/d.h5", subjects=3, time_points=600)
        mslr("fit", "--data", f"{d}/d.h5", "--out", f"{d}/run", "--epochs", 20, "--quiet", "--checkpoint-every", 0)

    @classmethod
    def tearDownClass(cls):
        import shutil
        shutil.rmtree(cls.shared, ignore_errors=True)

    def test_generation_feeds_the_outputs_back_from_the_start(self):
        d = self.shared
        mslr("generate", "--checkpoint", f"{d}/run", "--out", self.path("g.h5"), "--start", 100, "--steps", 5,
             "--quiet")
        mslr("predict", "--checkpoint", f"{d}/run", "--out", self.path("p.h5"), "--split", "all", "--quiet",
             "--dtype", "float32")
        with h5py.File(self.path("g.h5"), "r") as g, h5py.File(f"{d}/d.h5", "r") as data, \
                h5py.File(self.path("p.h5"), "r") as p:
            self.assertEqual(g.attrs["format"], "mslr-generated")
            for s in ("subject0", "subject1", "subject2"):
                v, m = g[f"subjects/{s}/values/neurons"][...], g[f"subjects/{s}/means/neurons"][...]
                self.assertEqual(v.shape[0], 5)
                self.assertTrue(np.array_equal(v[0], data[f"subjects/{s}/groups/neurons"][100]))  # the start
                self.assertTrue(np.isnan(m[0]).all())
                self.assertTrue(np.array_equal(v[1:], m[1:]))  # means, not draws
                # Step 1 reads only the data: it is the prediction of sample (100, 101).
                times = list(p[f"subjects/{s}/times"][...])
                self.assertTrue(np.allclose(m[1], p[f"subjects/{s}/neurons"][times.index(101)], rtol=1e-4,
                                            atol=1e-5))
        # Step 2 reads step 1's output: starting one step later from it (--start-from) gives the same.
        import shutil
        shutil.copy(f"{d}/d.h5", self.path("start.h5"))
        with h5py.File(self.path("start.h5"), "a") as f, h5py.File(self.path("g.h5"), "r") as g:
            for s in ("subject0", "subject1", "subject2"):
                f[f"subjects/{s}/groups/neurons"][101] = g[f"subjects/{s}/values/neurons"][1]
        mslr("generate", "--checkpoint", f"{d}/run", "--out", self.path("g2.h5"), "--start", 101, "--steps", 4,
             "--start-from", self.path("start.h5"), "--quiet", np=2)
        with h5py.File(self.path("g.h5"), "r") as a, h5py.File(self.path("g2.h5"), "r") as b:
            for s in ("subject0", "subject1", "subject2"):
                self.assertTrue(np.allclose(a[f"subjects/{s}/values/neurons"][1:],
                                            b[f"subjects/{s}/values/neurons"][...], rtol=1e-5, atol=1e-6), s)

    def test_draws_have_the_fitted_noise_and_the_same_bits_on_any_number_of_ranks(self):
        d = self.shared
        for np_ in (1, 3):
            mslr("generate", "--checkpoint", f"{d}/run", "--out", self.path(f"s{np_}.h5"), "--sample",
                 "--sample-seed", 4, "--subjects", "subject2,0", "--quiet", np=np_)
        with h5py.File(self.path("s1.h5"), "r") as a, h5py.File(self.path("s3.h5"), "r") as b, \
                h5py.File(f"{d}/run/checkpoints/final.h5", "r") as c:
            self.assertEqual(sorted(a["subjects"]), ["subject0", "subject2"])
            for s in ("subject0", "subject2"):
                v, m = a[f"subjects/{s}/values/neurons"][...], a[f"subjects/{s}/means/neurons"][...]
                self.assertTrue(np.array_equal(v, b[f"subjects/{s}/values/neurons"][...]))
                sub = c[f"subjects/{s}"]
                names = sub.attrs["param_names"].split("\n")
                offsets = list(sub.attrs["param_offsets"]) + [len(sub["params"])]
                i = names.index("psi.neurons")
                psi = sub["params"][offsets[i]:offsets[i + 1]]
                ratio = np.var(v[1:] - m[1:], axis=0).mean() / psi.mean()
                self.assertGreater(ratio, 0.85, s)
                self.assertLess(ratio, 1.15, s)

    def test_latents_are_the_projections_and_the_concatenation(self):
        d = self.shared
        mslr("latents", "--checkpoint", f"{d}/run", "--out", self.path("l.h5"), "--subjects", "subject1",
             "--quiet", np=2)
        with h5py.File(self.path("l.h5"), "r") as f, h5py.File(f"{d}/d.h5", "r") as data, \
                h5py.File(f"{d}/run/checkpoints/final.h5", "r") as c:
            self.assertEqual(f.attrs["format"], "mslr-latents")
            self.assertEqual(list(f["subjects"]), ["subject1"])
            s = f["subjects/subject1"]
            t = s["times"][...]
            self.assertEqual(list(t), list(range(1, 600)))  # --split all: every sample pair
            stim = data["subjects/subject1/groups/stim"][...]
            neurons = data["subjects/subject1/groups/neurons"][...]
            self.assertTrue(np.array_equal(s["proj/stim"][...], stim[t - 1]))  # fixed identity p
            p = c["subjects/subject1/modes/p.neurons"][...]
            self.assertTrue(np.allclose(s["proj/neurons"][...], neurons[t - 1] @ p, rtol=1e-4, atol=1e-6))
            tran = s["tran/neurons"][...]  # the concat mapping
            self.assertTrue(np.array_equal(tran, np.concatenate([s["proj/stim"][...], s["proj/neurons"][...]], 1)))
        self.assertIn("proj/stim [599, 4]", mslr("inspect", self.path("l.h5")).stdout)
        out = self.path("l.png")
        p = subprocess.run([PYTHON, os.path.join(TOOLS, "plot_latents.py"), self.path("l.h5"), "--out", out],
                           capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertGreater(os.path.getsize(out), 10000)

    def test_bad_requests_are_named(self):
        d = self.shared
        for args, message in [
            (["--feed", "neurons:stim"], "output group 'neurons' has"),
            (["--feed", "stim:neurons"], "'stim:neurons' is not OUTPUT:INPUT"),
            (["--start", 5000], "--start 5000 is beyond subject 'subject0'"),
            (["--start", 100, "--steps", 550], "go beyond them, and input group 'stim' is read from the data"),
            (["--subjects", "fish"], "no subject 'fish'"),
            (["--gpus-per-rank", 1], "generate runs on the CPU in this version"),
        ]:
            p = mslr("generate", "--checkpoint", f"{d}/run", "--out", self.path("g.h5"), *args, check=False)
            self.assertNotEqual(p.returncode, 0, args)
            self.assertIn(message, p.stderr, args)
            self.assertFalse(os.path.exists(self.path("g.h5")))


if __name__ == "__main__":
    unittest.main()
