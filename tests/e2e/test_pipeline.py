"""simulate -> fit (2 ranks) -> predict -> eval through the real binary, the distributed predict against the
1-rank predict, the predictions file's layout, and the plot tools on the outputs."""
import json
import os
import unittest

import h5py
import numpy as np

from helpers import ScratchTest, mslr, tool


class Pipeline(ScratchTest):
    @classmethod
    def setUpClass(cls):
        import tempfile
        cls.shared = tempfile.mkdtemp(prefix="mslr-e2e-pipeline-")
        d = cls.shared
        mslr("simulate", "--out", f"{d}/data.h5", "--subjects", 5, "--neurons-min", 150, "--neurons-max", 300,
             "--time-points", 1000, "--seed", 3)
        # Subject 4 stays out of the fit: predict must give it modes from its neurons' positions alone.
        cls.fit = mslr("fit", "--data", f"{d}/data.h5", "--out", f"{d}/run", "--epochs", 80, "--subjects", "0,1,2,3",
                       "--lr-schedule", "0:0.01,60:0.003", "--threads", 1, np=2)
        mslr("predict", "--checkpoint", f"{d}/run", "--out", f"{d}/pred2.h5", np=2)

    @classmethod
    def tearDownClass(cls):
        import shutil
        shutil.rmtree(cls.shared, ignore_errors=True)

    def test_held_out_means_are_recovered(self):
        out = json.loads(mslr("eval", "--predictions", f"{self.shared}/pred2.h5", "--json").stdout)
        pooled = out["pooled"]
        print(f"\n  pooled held-out R² against the true means {pooled['r2_true']:.4f}, against the data "
              f"{pooled['r2_data']:.4f}; held-out subject4 {out['subjects']['subject4']['r2_true']:.4f}")
        self.assertGreater(pooled["r2_true"], 0.9)
        self.assertGreater(out["subjects"]["subject4"]["r2_true"], 0.9)  # never fitted
        self.assertEqual(sorted(out["subjects"]), [f"subject{i}" for i in range(5)])
        table = mslr("eval", "--predictions", f"{self.shared}/pred2.h5").stdout
        self.assertIn("subject4 *", table)
        self.assertIn("pooled", table)

    def test_distributed_predict_equals_one_rank(self):
        for np_ in (1, 3):
            mslr("predict", "--checkpoint", f"{self.shared}/run", "--out", self.path(f"pred{np_}.h5"), np=np_)
        with h5py.File(f"{self.shared}/pred2.h5", "r") as two:
            for np_ in (1, 3):
                with h5py.File(self.path(f"pred{np_}.h5"), "r") as other:
                    for s in two["subjects"]:
                        for k in ("times", "neurons", "nll"):
                            self.assertTrue(np.array_equal(two["subjects"][s][k][()], other["subjects"][s][k][()]),
                                            f"{s}/{k} differs between 2 and {np_} ranks")

    def test_predictions_file_layout(self):
        with h5py.File(f"{self.shared}/pred2.h5", "r") as f, h5py.File(f"{self.shared}/data.h5", "r") as d:
            self.assertEqual(f.attrs["format"], "mslr-predictions")
            self.assertEqual(f.attrs["version"], 1)
            self.assertIn("split = test", f.attrs["config"])  # the options predict used, saved with its output
            self.assertEqual(sorted(f["subjects"]), sorted(d["subjects"]))
            for s in f["subjects"]:
                g = f["subjects"][s]
                t = g["times"][...]
                n = d["subjects"][s]["groups/neurons"].shape
                self.assertEqual(g["times"].dtype, np.int64)
                self.assertEqual(g["neurons"].dtype, np.float32)
                self.assertEqual(g["neurons"].shape, (len(t), n[1]))
                self.assertEqual(g["nll"].shape, ())
                self.assertEqual(g.attrs["samples"], len(t))
                # The test part: the last 20% of the time points, pairs inside it.
                self.assertEqual(t[0], round(0.8 * n[0]) + 1)
                self.assertEqual(t[-1], n[0] - 1)
                self.assertEqual(g.attrs["in_fit"], 0 if s == "subject4" else 1)

    def test_run_folder_and_checkpoint_layout(self):
        run = f"{self.shared}/run"
        self.assertTrue(os.path.exists(f"{run}/config.ini"))
        self.assertEqual(os.readlink(f"{run}/checkpoints/latest"), "final.h5")
        with open(f"{run}/metrics.jsonl") as f:
            metrics = [json.loads(line) for line in f]
        self.assertEqual([m["epoch"] for m in metrics], list(range(80)))
        with h5py.File(f"{run}/checkpoints/final.h5", "r") as f:
            self.assertEqual(f.attrs["format"], "mslr-checkpoint")
            self.assertEqual(f.attrs["complete"], 1)
            self.assertEqual(f.attrs["epoch"], 80)
            self.assertEqual(f.attrs["world_size"], 2)
            self.assertEqual(len(f["log/objective"]), 80)
            self.assertAlmostEqual(f["log/objective"][-1], metrics[-1]["objective"], places=6)
            names = f["shared"].attrs["param_names"].split("\n")
            self.assertIn("pred.p.neurons.w0", names)
            s0 = f["subjects/subject0"]
            self.assertEqual(s0["params"].shape, s0["adam_m"].shape)
            self.assertEqual(s0["modes/p.neurons"].shape[1], 4)
            self.assertEqual(f["subjects/subject4"].attrs["fitted"], 0)
        # Periodic checkpoints beyond the newest 3 are pruned.
        periodic = sorted(x for x in os.listdir(f"{run}/checkpoints") if x.startswith("epoch-"))
        self.assertEqual(periodic, ["epoch-000060.h5", "epoch-000070.h5", "epoch-000080.h5"])

    def test_inspect_describes_each_kind_of_file(self):
        self.assertIn("5 subjects", mslr("inspect", f"{self.shared}/data.h5").stdout)
        out = mslr("inspect", f"{self.shared}/run").stdout
        self.assertIn("epoch 80", out)
        self.assertIn("complete", out)
        self.assertIn("not in the fit", mslr("inspect", f"{self.shared}/pred2.h5").stdout)

    def test_plot_tools_write_pngs(self):
        d = self.shared
        for name, args in (("plot_log.py", [f"{d}/run"]),
                           ("plot_modes.py", [f"{d}/run", "--truth"]),
                           ("plot_predictions.py", [f"{d}/pred2.h5", "--subject", "subject4"])):
            png = self.path(name.replace(".py", ".png"))
            tool(name, *args, "--out", png)
            with open(png, "rb") as f:
                self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n", name)
            self.assertGreater(os.path.getsize(png), 10000, name)
        csv = self.path("scaling.csv")
        with open(csv, "w") as f:
            f.write("ranks,seconds_per_epoch\n1,2.0\n2,1.05\n3,0.75\n")
        tool("plot_scaling.py", csv, "--out", self.path("scaling.png"))
        self.assertGreater(os.path.getsize(self.path("scaling.png")), 10000)


if __name__ == "__main__":
    unittest.main(verbosity=2)
