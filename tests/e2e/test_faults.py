"""A failure on one rank ends the whole job within seconds and never hangs it, whatever the failure (an
exception, an abort, an exit without MPI_Finalize) and wherever it strikes (in a step, or while the ranks write
a checkpoint together); the message names the rank; checkpoints/latest still opens and the fit resumes from it.
Failures are injected with the test-only hook MSLR_FAULT (include/mslr/core/fault.h)."""
import os
import random
import signal
import subprocess
import time
import unittest

import h5py
import numpy as np

from helpers import ENV, MPIEXEC, MSLR, ScratchTest, final_params, mslr

LIMIT_S = 30


class OneRankFails(ScratchTest):
    def setUp(self):
        super().setUp()
        mslr("simulate", "--out", self.path("d.h5"), "--subjects", 3, "--neurons-min", 40, "--neurons-max", 80,
             "--time-points", 300)

    def fail_once(self, np_, fault):
        """Runs a 4-epoch fit (4 minibatches, a checkpoint every epoch) with MSLR_FAULT=fault on np_ ranks."""
        run = self.path(f"run-{np_}-{fault.replace(':', '-').replace(',', '_')}")
        env = dict(ENV, MSLR_FAULT=fault)
        start = time.time()
        cmd = [MPIEXEC, "-np", str(np_), MSLR, "fit", "--data", self.path("d.h5"), "--out", run, "--epochs", "4",
               "--batches", "4", "--checkpoint-every", "1", "--quiet"]
        p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
        took = time.time() - start
        self.assertNotEqual(p.returncode, 0, f"{fault}: the job did not fail\n{p.stderr}")
        self.assertLess(took, LIMIT_S, f"{fault} on {np_} ranks took {took:.1f} s to end")
        return run, p, took

    def assert_resumable(self, run):
        latest = os.path.join(run, "checkpoints", "latest")
        with h5py.File(latest, "r") as f:
            self.assertEqual(int(f.attrs["complete"]), 1)
            self.assertEqual(int(f.attrs["epoch"]), 1)
        mslr("fit", "--resume", run, np=2, timeout=120)
        with h5py.File(os.path.join(run, "checkpoints", "final.h5"), "r") as f:
            self.assertEqual(int(f.attrs["epoch"]), 4)

    def test_a_failure_in_a_step_ends_the_job(self):
        # Step 7 is the third minibatch of epoch 2, after the first checkpoint.
        for np_ in (2, 3):
            for kind, says in (("throw", "mslr fit: error on rank 1: injected fault (MSLR_FAULT) at step 7"),
                               ("abort", "process rank 1 "),
                               ("exit", "],1]")):
                with self.subTest(ranks=np_, kind=kind):
                    run, p, took = self.fail_once(np_, f"rank:1,step:7,kind:{kind}")
                    print(f"\n  {np_} ranks, {kind} at step 7: ended in {took:.1f} s, status {p.returncode}")
                    self.assertIn(says, p.stderr)
                    self.assert_resumable(run)

    def test_a_failure_while_writing_a_checkpoint_ends_the_job_and_keeps_the_previous_one(self):
        for np_ in (2, 3):
            for kind in ("throw", "abort"):
                with self.subTest(ranks=np_, kind=kind):
                    run, p, took = self.fail_once(np_, f"rank:1,checkpoint:2,kind:{kind}")
                    print(f"\n  {np_} ranks, {kind} in checkpoint 2: ended in {took:.1f} s, status {p.returncode}")
                    if kind == "throw":
                        # Every rank learns it at the end of the write phase, and the half-written file goes.
                        self.assertEqual(p.returncode, 1)
                        self.assertIn("rank 1: injected fault (MSLR_FAULT) at checkpoint 2", p.stderr)
                        self.assertNotIn("epoch-000002.h5.tmp", os.listdir(os.path.join(run, "checkpoints")))
                    else:
                        self.assertIn("process rank 1 ", p.stderr)
                    self.assertEqual(os.readlink(os.path.join(run, "checkpoints", "latest")), "epoch-000001.h5")
                    self.assert_resumable(run)


class OutputsAreAtomic(ScratchTest):
    """Simulated data, checkpoints and predictions go through one helper (io/atomic_file.h): a temporary file,
    flushed, renamed into place. A process that dies before the rename leaves no file under the final name."""

    def run_with_fault(self, fault, *args, np_=None):
        cmd = ([MPIEXEC, "-np", str(np_), MSLR] if np_ else [MSLR]) + [str(a) for a in args]
        return subprocess.run(cmd, env=dict(ENV, MSLR_FAULT=fault), capture_output=True, text=True, timeout=120)

    def test_simulate_and_predict_write_the_whole_file_or_none(self):
        data = self.path("d.h5")
        for kind in ("throw", "abort"):
            p = self.run_with_fault(f"rank:0,output:1,kind:{kind}", "simulate", "--out", data, "--subjects", 2,
                                    "--neurons-min", 30, "--neurons-max", 40, "--time-points", 200)
            self.assertNotEqual(p.returncode, 0, p.stderr)
            self.assertFalse(os.path.exists(data), f"simulate ({kind}) left {data}")
            if kind == "throw":
                self.assertFalse(os.path.exists(data + ".tmp"))
        mslr("simulate", "--out", data, "--subjects", 2, "--neurons-min", 30, "--neurons-max", 40,
             "--time-points", 200)
        run = self.path("run")
        mslr("fit", "--data", data, "--out", run, "--epochs", 2, np=2)
        pred = self.path("pred.h5")
        for kind in ("throw", "abort"):
            p = self.run_with_fault(f"rank:0,output:1,kind:{kind}", "predict", "--checkpoint", run, "--data", data,
                                    "--out", pred, np_=2)
            self.assertNotEqual(p.returncode, 0, p.stderr)
            self.assertFalse(os.path.exists(pred), f"predict ({kind}) left {pred}")
            if kind == "throw":
                self.assertIn("injected fault (MSLR_FAULT) at output 1", p.stderr)
                self.assertFalse(os.path.exists(pred + ".tmp"))
        mslr("predict", "--checkpoint", run, "--data", data, "--out", pred, np=2)
        with h5py.File(pred, "r") as f:
            self.assertEqual(f.attrs["format"], "mslr-predictions")


def rank_pids(launcher_pid):
    """The mslr processes that mpirun started (its children)."""
    out = subprocess.run(["pgrep", "-P", str(launcher_pid)], capture_output=True, text=True).stdout
    return [int(x) for x in out.split()]


def latest_epoch(link):
    """The epoch of the checkpoint a latest link names (epoch-NNNNNN[...].h5), 0 when there is none."""
    try:
        return int(os.readlink(link).split("-")[1].split(".")[0])
    except (OSError, IndexError, ValueError):
        return 0


class FaultCampaign(ScratchTest):
    """Kills at random moments — SIGKILL of one rank or of all ranks, an abort of one rank while a checkpoint is
    being written or of rank 0 while checkpoints/latest is being switched — each followed by a resume on 2 or 3
    ranks: latest always names a complete checkpoint that never goes backwards, and the fit ends bit for bit
    where an unbroken one ends. Seeded: MSLR_CAMPAIGN_SEED replays a campaign, MSLR_CAMPAIGN_KILLS makes it
    longer (default 20)."""

    def test_random_kills_never_lose_the_fit(self):
        kills = int(os.environ.get("MSLR_CAMPAIGN_KILLS", "20"))
        seed = int(os.environ.get("MSLR_CAMPAIGN_SEED", "2026"))
        rng = random.Random(seed)
        print(f"\n  fault campaign: {kills} kills, seed {seed}")
        data = self.path("d.h5")
        mslr("simulate", "--out", data, "--subjects", 3, "--neurons-min", 300, "--neurons-max", 500,
             "--time-points", 1500)
        epochs = 8 + 4 * kills  # each attempt advances a few epochs: room for every kill
        common = ["--data", data, "--batches", 6, "--checkpoint-every", 1, "--keep-checkpoints", 2,
                  "--lr-schedule", f"0:0.01,{epochs // 2}:0.003", "--epochs", epochs, "--quiet"]
        mslr("fit", *common, "--out", self.path("unbroken"), np=2, timeout=300)
        run = self.path("run")
        ckpts = os.path.join(run, "checkpoints")
        latest = os.path.join(ckpts, "latest")
        last_epoch = 0
        ways = ["one rank", "all ranks", "checkpoint write", "latest switch"]
        for i in range(kills):
            if i % len(ways) == 0:
                rng.shuffle(ways)  # every way in every round of four, in a random order
            how = ways[i % len(ways)]
            np_ = rng.choice([2, 3])
            args = ["fit", "--resume", run] if os.path.exists(latest) else ["fit", *common, "--out", run]
            env = dict(ENV)
            # The two narrow windows are hit with the fault hook (an abort there leaves the files as a kill
            # would); the other kills are SIGKILLs at random moments.
            if how == "latest switch":
                env["MSLR_FAULT"] = f"rank:0,latest:{rng.randint(1, 3)},kind:abort"
            if how == "checkpoint write":
                env["MSLR_FAULT"] = f"rank:{rng.randrange(np_)},checkpoint:{rng.randint(1, 3)},kind:abort"
            p = subprocess.Popen([MPIEXEC, "-np", str(np_), MSLR] + [str(a) for a in args], env=env,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            deadline = time.time() + 60
            if how in ("one rank", "all ranks"):
                # A random point within the next few epochs (progress read from the name latest points at).
                target = latest_epoch(latest) + rng.randint(1, 3)
                while p.poll() is None and latest_epoch(latest) < target and time.time() < deadline:
                    time.sleep(0.002)
                time.sleep(rng.uniform(0.0, 0.03))
            if how in ("one rank", "all ranks") and p.poll() is None:
                pids = rank_pids(p.pid)
                for pid in (pids if how == "all ranks" else [rng.choice(pids)] if pids else []):
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
            p.wait(timeout=60)
            self.assertTrue(os.path.exists(latest), f"kill {i + 1} ({how}): no checkpoint yet")
            with h5py.File(latest, "r") as f:
                self.assertEqual(int(f.attrs["complete"]), 1, f"kill {i + 1} ({how}): latest is incomplete")
                epoch = int(f.attrs["epoch"])
            self.assertGreaterEqual(epoch, last_epoch, f"kill {i + 1} ({how}): latest went backwards")
            self.assertLess(epoch, epochs, f"kill {i + 1}: the fit finished before it could be killed")
            last_epoch = epoch
            print(f"  kill {i + 1:2d}: {how:16s} on {np_} ranks, status {p.returncode:4d}, latest epoch {epoch}")
        mslr("fit", "--resume", run, np=2, timeout=300)
        a = final_params(self.path("unbroken", "checkpoints", "final.h5"))
        b = final_params(os.path.join(ckpts, "final.h5"))
        self.assertEqual(sorted(a), sorted(b))
        for k in a:
            self.assertTrue(np.array_equal(a[k], b[k]), f"{k} differs from the unbroken fit")


if __name__ == "__main__":
    unittest.main()
