"""The jobs/ scripts under a real one-node Slurm started by the test on 127.0.0.1 (skipped, saying why, only
where the daemons cannot start): a fit job completes; a job with a short time limit gets its signal,
checkpoints, is requeued and finishes from the checkpoint with the same final parameters as an unbroken fit;
a scaling study collects its figures."""
import os
import re
import time
import unittest

import h5py
import numpy as np

from helpers import MSLR, ScratchTest, mslr
from slurm_cluster import SlurmCluster, SlurmUnavailable

JOBS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "jobs")
TOOLS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools")


class Slurm(ScratchTest):
    @classmethod
    def setUpClass(cls):
        try:
            cls.cluster = SlurmCluster(cpus=2).__enter__()
        except SlurmUnavailable as e:
            raise unittest.SkipTest(f"no Slurm here: {e}")

    @classmethod
    def tearDownClass(cls):
        cls.cluster.__exit__(None, None, None)

    def submit(self, script, *sbatch_args, **env):
        return self.cluster.sbatch("-D", self.dir, "-o", self.path("job-%j.out"), *sbatch_args,
                                   os.path.join(JOBS, script), env={k: str(v) for k, v in env.items()})

    def output(self, job):
        with open(self.path(f"job-{job}.out")) as f:
            return f.read()

    def simulate(self, neurons=80, time_points=800):
        mslr("simulate", "--out", self.path("data.h5"), "--subjects", 4, "--neurons-min", neurons, "--neurons-max",
             neurons, "--time-points", time_points)

    def test_fit_job_completes(self):
        self.simulate()
        job = self.submit("slurm-cpu.sh", "--nodes=1", "--ntasks=2", "--ntasks-per-node=2", "--cpus-per-task=1", DATA=self.path("data.h5"),
                          OUT=self.path("run"), MSLR=MSLR, MSLR_ARGS="--epochs 20")
        info = self.cluster.wait(job, timeout=300)
        self.assertEqual(info["JobState"], "COMPLETED", self.output(job))
        self.assertIn("done: 20 epochs", self.output(job))
        self.assertIn("ranks 2", self.output(job))
        with h5py.File(self.path("run", "checkpoints", "final.h5"), "r") as f:
            self.assertEqual(f.attrs["epoch"], 20)
            self.assertEqual(f.attrs["world_size"], 2)

    def test_time_limit_signal_checkpoint_requeue_resume(self):
        self.simulate(neurons=400, time_points=1500)
        # Calibrate: enough epochs that the fit outlasts the first signal (sent up to 60 s into a 2-minute job).
        line = mslr("fit", "--data", self.path("data.h5"), "--out", self.path("calib"), "--epochs", 5,
                    "--checkpoint-every", 0, "--threads", 1, np=2).stdout
        per_epoch = float(re.search(r"\(([0-9.e+-]+) s/epoch\)", line).group(1))
        epochs = max(20, int(90 / per_epoch))
        args = f"--epochs {epochs} --checkpoint-every 1000000 --lr-schedule 0:0.01,{epochs // 2}:0.003"
        job = self.submit("slurm-preemptible.sh", "--nodes=1", "--ntasks=2", "--ntasks-per-node=2", "--cpus-per-task=1", "--time=2",
                          "--signal=B:USR1@60", DATA=self.path("data.h5"), OUT=self.path("run"), MSLR=MSLR,
                          MSLR_ARGS=args)
        t0 = time.time()
        info = self.cluster.wait(job, timeout=900)
        log = self.output(job)
        print(f"\n  {epochs} epochs ({per_epoch:.3f} s each); job finished after {time.time() - t0:.0f} s, "
              f"restarts {info.get('Restarts')}")
        self.assertEqual(info["JobState"], "COMPLETED", log)
        self.assertGreaterEqual(int(info["Restarts"]), 1, log)
        self.assertIn("time limit near, asking mslr to checkpoint", log)
        self.assertIn("checkpointed; requeueing", log)
        self.assertIn("resuming from", log)
        self.assertIn(f"done: {epochs} epochs", log)
        # The unbroken fit, outside Slurm, ends with the same parameters bit for bit.
        mslr("fit", "--data", self.path("data.h5"), "--out", self.path("unbroken"), "--threads", 1,
             *args.split(), np=2)
        with h5py.File(self.path("run", "checkpoints", "final.h5"), "r") as a, \
                h5py.File(self.path("unbroken", "checkpoints", "final.h5"), "r") as b:
            self.assertTrue(np.array_equal(a["shared/params"][...], b["shared/params"][...]))
            for s in b["subjects"]:
                self.assertTrue(np.array_equal(a["subjects"][s]["params"][...], b["subjects"][s]["params"][...]), s)
            self.assertTrue(np.array_equal(a["log/objective"][...], b["log/objective"][...]))

    def test_scaling_study_collects_figures(self):
        self.simulate()
        job = self.submit("slurm-scaling.sh", "--ntasks=2", "--cpus-per-task=1", DATA=self.path("data.h5"),
                          OUT=self.path("scaling"), MSLR=MSLR, RANKS="1 2", EPOCHS=3, MSLR_TOOLS=TOOLS,
                          PYTHON=os.environ.get("MSLR_PYTHON", "/usr/bin/python3"))
        info = self.cluster.wait(job, timeout=300)
        self.assertEqual(info["JobState"], "COMPLETED", self.output(job))
        with open(self.path("scaling", "results.csv")) as f:
            rows = f.read().splitlines()
        self.assertEqual(rows[0], "ranks,seconds_per_epoch,seconds,epochs,objective")
        self.assertEqual([r.split(",")[0] for r in rows[1:]], ["1", "2"])
        self.assertTrue(all(float(r.split(",")[1]) > 0 for r in rows[1:]))
        # Same fit on 1 and 2 ranks: the same objective.
        self.assertEqual(rows[1].split(",")[4], rows[2].split(",")[4])
        self.assertGreater(os.path.getsize(self.path("scaling", "scaling.png")), 10000)


if __name__ == "__main__":
    unittest.main(verbosity=2)
