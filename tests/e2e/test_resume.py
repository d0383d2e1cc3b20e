"""Never lose a day-long fit: a signal makes every rank checkpoint at the next minibatch and exit with status 3;
the resumed fit (also on another number of ranks) ends bit for bit where an unbroken one ends; a job killed
while writing a checkpoint leaves the previous checkpoint loadable and the half-written file unused."""
import os
import signal
import subprocess
import time
import unittest

import h5py
import numpy as np

from helpers import ENV, MPIEXEC, MSLR, ScratchTest, assert_same_fit, mslr


class Resume(ScratchTest):
    def setUp(self):
        super().setUp()
        mslr("simulate", "--out", self.path("d.h5"), "--subjects", 4, "--neurons-min", 60, "--neurons-max", 120,
             "--time-points", 800)
        self.common = ["--data", self.path("d.h5"), "--lr-schedule", "0:0.01,30:0.003", "--batches", 8,
                       "--checkpoint-every", 5, "--threads", 1]

    def test_signal_checkpoints_and_the_resumed_fit_ends_like_an_unbroken_one(self):
        mslr("fit", *self.common, "--out", self.path("unbroken"), "--epochs", 60, np=2)
        # The same fit, stopped by SIGUSR1 (mpirun forwards it to every rank) once its first checkpoint exists.
        cmd = [MPIEXEC, "-np", "2", MSLR, "fit", *map(str, self.common), "--out", self.path("run"), "--epochs", "60"]
        p = subprocess.Popen(cmd, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        latest = self.path("run", "checkpoints", "latest")
        deadline = time.time() + 120
        while not os.path.exists(latest) and p.poll() is None and time.time() < deadline:
            time.sleep(0.01)
        p.send_signal(signal.SIGUSR1)
        out, err = p.communicate(timeout=120)
        self.assertEqual(p.returncode, 3, out + err)
        self.assertIn("stopped by a signal; resume with: mslr fit --resume", out)
        with h5py.File(latest, "r") as f:
            stopped_at = (int(f.attrs["epoch"]), int(f.attrs["batch"]))
        self.assertLess(stopped_at[0], 60)
        print(f"\n  stopped at epoch {stopped_at[0]}, minibatch {stopped_at[1]}")
        # Resume on 3 ranks from the run folder; the saved config supplies every option.
        mslr("fit", "--resume", self.path("run"), np=3)
        assert_same_fit(self, self.path("unbroken", "checkpoints", "final.h5"), self.path("run", "checkpoints", "final.h5"))
        # The metrics file holds each epoch once, even though some were run twice around the stop.
        with open(self.path("run", "metrics.jsonl")) as f:
            epochs = [int(line.split(",")[0].split(":")[1]) for line in f]
        self.assertEqual(epochs, list(range(60)))

    def test_a_second_signal_exits_at_once(self):
        # One process, so that the signals go straight to mslr; the SIGSTOP/SIGCONT pair makes both signals
        # pending together, before the fit reaches a minibatch boundary.
        cmd = [MSLR, "fit", *map(str, self.common), "--out", self.path("run"), "--epochs", "100000"]
        p = subprocess.Popen(cmd, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        latest = self.path("run", "checkpoints", "latest")
        deadline = time.time() + 120
        while not os.path.exists(latest) and time.time() < deadline:
            time.sleep(0.01)
        before = sorted(os.listdir(self.path("run", "checkpoints")))
        p.send_signal(signal.SIGSTOP)
        p.send_signal(signal.SIGUSR1)
        time.sleep(0.1)
        p.send_signal(signal.SIGTERM)
        p.send_signal(signal.SIGCONT)
        out, err = p.communicate(timeout=120)
        # The exit status is 128 + the second signal handled (the kernel picks the order of pending ones).
        self.assertIn(p.returncode, (128 + signal.SIGTERM, 128 + signal.SIGUSR1), out + err)
        self.assertIn("second signal, exiting without a checkpoint", err)
        after = [n for n in sorted(os.listdir(self.path("run", "checkpoints"))) if not n.endswith(".tmp")]
        self.assertLessEqual(len(after), len(before) + 1)  # at most the periodic one that was under way
        self.assertIn("complete", mslr("inspect", self.path("run")).stdout)

    def test_resume_from_an_older_checkpoint_on_another_rank_count(self):
        mslr("fit", *self.common, "--out", self.path("a"), "--epochs", 40, "--keep-checkpoints", 0, np=2)
        for np_ in (1, 3):
            mslr("fit", "--resume", self.path("a", "checkpoints", "epoch-000020.h5"), "--out", self.path(f"b{np_}"),
                 np=np_)
            assert_same_fit(self, self.path("a", "checkpoints", "final.h5"), self.path(f"b{np_}", "checkpoints", "final.h5"))

    def test_killed_while_writing_a_checkpoint(self):
        # Large enough checkpoints (a copy of the data each) that the kill lands while one is being written.
        mslr("simulate", "--out", self.path("big.h5"), "--subjects", 4, "--neurons-min", 3000, "--neurons-max", 3000,
             "--time-points", 3000)
        run = self.path("run")
        ckpts = os.path.join(run, "checkpoints")
        for attempt in range(5):
            subprocess.run(["rm", "-rf", run])
            cmd = [MPIEXEC, "-np", "2", MSLR, "fit", "--data", self.path("big.h5"), "--out", run, "--epochs", "1000",
                   "--checkpoint-every", "1", "--copy-data", "--batches", "50", "--model.hidden", "4", "--threads", "1"]
            p = subprocess.Popen(cmd, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                 start_new_session=True)
            # Wait for one complete checkpoint, then for the next one to be under way, and kill everything.
            deadline = time.time() + 300
            tmp = None
            while time.time() < deadline and p.poll() is None:
                names = os.listdir(ckpts) if os.path.isdir(ckpts) else []
                tmp = next((n for n in names if n.endswith(".tmp")), None)
                if tmp and os.path.exists(os.path.join(ckpts, "latest")):
                    break
                tmp = None
                time.sleep(0.002)
            # SIGKILL every process of the job at once (the ranks first: they must not get to clean up).
            pids = subprocess.run(["pgrep", "-f", run], capture_output=True, text=True).stdout.split()
            for pid in pids:
                if int(pid) != p.pid:
                    os.kill(int(pid), signal.SIGKILL)
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
            if tmp and os.path.exists(os.path.join(ckpts, tmp)):
                break
        else:
            self.skipTest("the kill never landed while a checkpoint was being written")
        print(f"\n  killed while writing {tmp} (attempt {attempt + 1}); latest -> {os.readlink(ckpts + '/latest')}")
        # The previous checkpoint is complete and loads; the half-written file is never taken for a checkpoint.
        self.assertIn("complete", mslr("inspect", run).stdout)
        self.assertNotEqual(os.readlink(ckpts + "/latest"), tmp)
        p = mslr("fit", "--resume", os.path.join(ckpts, tmp), "--out", self.path("other"), check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertRegex(p.stderr, r"not an HDF5 file|incomplete|cannot open")
        mslr("fit", "--resume", run, "--epochs", int(mslr("inspect", run).stdout.split("epoch ")[1].split(",")[0]) + 1,
             "--checkpoint-every", 0)
        self.assertEqual(os.readlink(ckpts + "/latest"), "final.h5")


class Divergence(ScratchTest):
    def test_a_diverging_fit_stops_every_rank_with_status_4_and_keeps_its_last_finite_checkpoint(self):
        mslr("simulate", "--out", self.path("d.h5"), "--subjects", 3, "--neurons-min", 40, "--neurons-max", 80,
             "--time-points", 300)
        run = self.path("run")
        # A sane rate for two epochs, then one that sends every parameter to overflow.
        args = ["fit", "--data", self.path("d.h5"), "--out", run, "--epochs", 5, "--checkpoint-every", 1,
                "--batches", 4, "--lr-schedule", "0:0.01,2:1e20", "--overwrite"]
        for np_ in (2, 3):
            p = mslr(*args, np=np_, check=False, timeout=120)
            self.assertEqual(p.returncode, 4, p.stdout + p.stderr)
            lines = [x for x in p.stderr.splitlines() if x.startswith("mslr fit: the fit diverged")]
            # Every rank stopped at the same step; rank 0 says so once, naming the epoch, minibatch and subject.
            self.assertEqual(len(lines), 1, p.stderr)
            self.assertIn("the fit diverged at epoch 3, minibatch ", lines[0])
            self.assertIn("subject 'subject", lines[0])
            self.assertIn("the last checkpoint is " + os.path.join(run, "checkpoints", "latest"), lines[0])
            # Nothing non-finite was logged or saved: two epochs of finite figures, and the checkpoints are finite.
            with open(os.path.join(run, "metrics.jsonl")) as f:
                text = f.read()
            self.assertEqual(len(text.splitlines()), 2)
            self.assertNotIn("nan", text.lower())
            self.assertNotIn("inf", text.lower())
            ckpts = sorted(x for x in os.listdir(os.path.join(run, "checkpoints")) if x.endswith(".h5"))
            self.assertEqual(ckpts, ["epoch-000001.h5", "epoch-000002.h5"])
            self.assertEqual(os.readlink(os.path.join(run, "checkpoints", "latest")), "epoch-000002.h5")
            with h5py.File(os.path.join(run, "checkpoints", "latest"), "r") as f:
                values = []
                f.visititems(lambda n, o: values.append(o[...]) if isinstance(o, h5py.Dataset) and
                             o.dtype.kind == "f" else None)
                self.assertTrue(all(np.isfinite(v).all() for v in values))
        # The run goes on from its last checkpoint at a lower rate.
        mslr("fit", "--resume", run, "--lr-schedule", "0:0.01,2:0.001", np=2, timeout=120)
        with h5py.File(os.path.join(run, "checkpoints", "final.h5"), "r") as f:
            self.assertEqual(int(f.attrs["epoch"]), 5)
            self.assertTrue(np.isfinite(f["log/objective"][...]).all())


if __name__ == "__main__":
    unittest.main(verbosity=2)
