"""What scientists do with a fitted model, through the real binary: per-group model options, per-subject
splits from the data file, predicting from a checkpoint alone, given modes, warm starts with frozen parts, and
generation and latents."""
import os
import unittest

import h5py
import numpy as np

from helpers import ScratchTest, mslr


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


if __name__ == "__main__":
    unittest.main()
