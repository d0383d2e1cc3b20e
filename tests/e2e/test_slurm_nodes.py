"""The jobs/ scripts on a real two-node Slurm cluster made on this machine: two network namespaces are two hosts,
each with its own slurmd (and its own TmpFS), and `srun -N2 --mpi=pmix` starts ranks on both, which talk over
TCP. A fit job with one and with two ranks per node, and a preemptible job that is signalled, checkpoints, is
requeued and resumes on both nodes, each end with the parameters of the same fit on one node, bit for bit.
Skipped, with the reason, where namespaces cannot be made or the daemons do not start."""
import os
import re
import sys
import time
import shutil
import subprocess
import unittest

from helpers import MSLR, TOOLS, assert_same_fit, mslr
from slurm_cluster import SlurmCluster, SlurmUnavailable

sys.path.insert(0, TOOLS)
import netns_nodes  # noqa: E402

JOBS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "jobs")


class TwoNodeSlurm(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir, cls.nodes = netns_nodes.for_test("mslr-e2e-slurm-nodes-")
        try:
            cls.cluster = SlurmCluster(cpus=2, nodes=cls.nodes).__enter__()
        except SlurmUnavailable as e:
            cls.nodes.remove()
            shutil.rmtree(cls.dir, ignore_errors=True)
            raise unittest.SkipTest(f"no two-node Slurm here: {e}")
        d = cls.dir
        mslr("simulate", "--out", f"{d}/data.h5", "--subjects", 5, "--neurons-min", 300, "--neurons-max", 600,
             "--time-points", 1500, "--seed", 5)
        # About 15 s on one node, so that a signal sent once the first checkpoint is there finds the fit running
        # (on two nodes over TCP, and with 4 ranks on this machine's cores, it takes longer).
        line = mslr("fit", "--data", f"{d}/data.h5", "--out", f"{d}/calib", "--epochs", 5, "--checkpoint-every",
                    0, "--threads", 1, np=2).stdout
        per_epoch = float(re.search(r"\(([0-9.e+-]+) s/epoch\)", line).group(1))
        cls.epochs = min(400, max(40, int(15 / per_epoch)))
        cls.args = (f"--epochs {cls.epochs} --batches 6 --checkpoint-every {cls.epochs // 20} "
                    f"--lr-schedule 0:0.01,{cls.epochs // 2}:0.003")
        # The reference: the same fit, unbroken, by mpirun on one node.
        mslr("fit", "--data", f"{d}/data.h5", "--out", f"{d}/one", "--threads", 1, *cls.args.split(), np=2)

    @classmethod
    def tearDownClass(cls):
        cls.cluster.__exit__(None, None, None)
        cls.nodes.remove()
        shutil.rmtree(cls.dir, ignore_errors=True)

    def submit(self, script, out, *sbatch_args):
        # Open MPI's traffic between the nodes over TCP on their network only.
        env = {"DATA": f"{self.dir}/data.h5", "OUT": f"{self.dir}/{out}", "MSLR": MSLR, "MSLR_ARGS": self.args,
               "OMPI_MCA_btl": "self,tcp", "OMPI_MCA_btl_tcp_if_include": f"{self.nodes.subnet}.0/24"}
        return self.cluster.sbatch("-D", self.dir, "-o", f"{self.dir}/{out}.out", "--nodes=2", "--cpus-per-task=1",
                                   *sbatch_args, os.path.join(JOBS, script), env=env)

    def output(self, out):
        with open(f"{self.dir}/{out}.out") as f:
            return f.read()

    def assert_same_fit(self, run):
        """The run's final parameters are the one-node fit's, bit for bit."""
        assert_same_fit(self, f"{self.dir}/one/checkpoints/final.h5", f"{self.dir}/{run}/checkpoints/final.h5")

    def test_fit_jobs_on_two_nodes_equal_the_fit_on_one(self):
        for per_node in (1, 2):
            out = f"fit{per_node}"
            job = self.submit("slurm-cpu.sh", out, f"--ntasks-per-node={per_node}")
            info = self.cluster.wait(job, timeout=600)
            log = self.output(out)
            self.assertEqual(info["JobState"], "COMPLETED", log)
            self.assertIn(f"{2 * per_node} rank(s), 1 thread(s) per rank on 2 node(s)", log)
            self.assertIn(f"done: {self.epochs} epochs", log)
            self.assert_same_fit(out)

    def test_signalled_on_two_nodes_requeued_and_resumed(self):
        job = self.submit("slurm-preemptible.sh", "pre", "--ntasks-per-node=1")
        latest = f"{self.dir}/pre/checkpoints/latest"
        deadline = time.time() + 300
        while not os.path.exists(latest) and time.time() < deadline:
            time.sleep(0.2)
        self.assertTrue(os.path.exists(latest), self.output("pre"))
        # As Slurm does before a time limit with --signal=B:USR1: to the batch shell, which passes it on.
        subprocess.run(["scancel", "--batch", "--signal=USR1", job], env=self.cluster.env, check=True)
        info = self.cluster.wait(job, timeout=600)
        log = self.output("pre")
        print(f"\n  {self.epochs} epochs on 2 nodes; restarts {info.get('Restarts')}", end="")
        self.assertEqual(info["JobState"], "COMPLETED", log)
        self.assertGreaterEqual(int(info["Restarts"]), 1, log)
        self.assertIn("checkpointed; requeueing", log)
        self.assertIn("resuming from", log)
        self.assertIn(f"done: {self.epochs} epochs", log)
        self.assert_same_fit("pre")


if __name__ == "__main__":
    unittest.main(verbosity=2)
