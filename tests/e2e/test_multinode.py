"""mslr across a node boundary, for real on one machine: two network namespaces are two hosts with their own
addresses, mpirun starts one daemon in each (through an rsh agent that enters the namespace), and the ranks
talk over TCP and compute their node-local ranks per node, as on a cluster. A fit on two nodes (one and two
ranks per node), a signal and a resume on the other layout, and predict, each equal bit for bit to the run on
one node. Skipped, with the reason, where namespaces cannot be made (no root, no CAP_NET_ADMIN, no `ip`)."""
import os
import shutil
import signal
import subprocess
import time
import unittest

import sys

import h5py
import numpy as np

from helpers import ENV, MPIEXEC, MSLR, TOOLS, assert_same_fit, mslr

sys.path.insert(0, TOOLS)
import netns_nodes  # noqa: E402

class TwoNodes(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir, cls.nodes = netns_nodes.for_test("mslr-e2e-nodes-")
        d = cls.dir
        mslr("simulate", "--out", f"{d}/d.h5", "--subjects", 5, "--neurons-min", 60, "--neurons-max", 120,
             "--time-points", 600, "--seed", 4)
        cls.common = ["--data", f"{d}/d.h5", "--epochs", 30, "--batches", 6, "--checkpoint-every", 5,
                      "--lr-schedule", "0:0.01,20:0.003"]
        mslr("fit", *cls.common, "--out", f"{d}/one", "--threads", 1, np=2)  # the reference: one node

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)
        cls.nodes.remove()

    def across(self, per_node, *args):
        """The command line for `per_node` ranks on each of the two namespace nodes."""
        return self.nodes.mpirun(per_node, MPIEXEC) + [MSLR, *map(str, args)]

    def run_across(self, per_node, *args, timeout=300):
        p = subprocess.run(self.across(per_node, *args), env=ENV, capture_output=True, text=True, timeout=timeout)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        return p

    def test_a_fit_on_two_nodes_equals_the_fit_on_one(self):
        d = self.dir
        p = self.run_across(1, "fit", *self.common, "--out", f"{d}/two")
        # One rank per node, unbound: each rank takes all of its node's cores, as node-local ranks are counted per
        # node (on one node the two ranks would share them: 1 thread each).
        self.assertIn("2 rank(s), 2 thread(s) per rank", p.stdout)
        assert_same_fit(self, f"{d}/one/checkpoints/final.h5", f"{d}/two/checkpoints/final.h5")

    def test_stopped_on_two_nodes_and_resumed_on_the_other_layout(self):
        d = self.dir
        cmd = self.across(2, "fit", *self.common, "--out", f"{d}/four", "--threads", 1)
        p = subprocess.Popen(cmd, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        latest = f"{d}/four/checkpoints/latest"
        deadline = time.time() + 120
        while not os.path.exists(latest) and p.poll() is None and time.time() < deadline:
            time.sleep(0.01)
        p.send_signal(signal.SIGUSR1)  # mpirun forwards it to the ranks on both nodes
        out, err = p.communicate(timeout=120)
        self.assertEqual(p.returncode, 3, out + err)
        with h5py.File(latest, "r") as f:
            self.assertEqual(int(f.attrs["world_size"]), 4)
            stopped = int(f.attrs["epoch"])
        self.assertLess(stopped, 30)
        print(f"\n  4 ranks on 2 nodes stopped at epoch {stopped}; resumed on 2 nodes x 1 rank", end="")
        self.run_across(1, "fit", "--resume", f"{d}/four")
        assert_same_fit(self, f"{d}/one/checkpoints/final.h5", f"{d}/four/checkpoints/final.h5")

    def test_predict_on_two_nodes_equals_predict_on_one(self):
        d = self.dir
        mslr("predict", "--checkpoint", f"{d}/one", "--out", f"{d}/p1.h5", np=2)
        self.run_across(2, "predict", "--checkpoint", f"{d}/one", "--out", f"{d}/p4.h5")
        with h5py.File(f"{d}/p1.h5", "r") as a, h5py.File(f"{d}/p4.h5", "r") as b:
            for s in a["subjects"]:
                for k in ("times", "neurons", "nll"):
                    self.assertTrue(np.array_equal(a[f"subjects/{s}/{k}"][()], b[f"subjects/{s}/{k}"][()]), f"{s}/{k}")


if __name__ == "__main__":
    unittest.main()
