"""Shared helpers for the end-to-end tests: run the real mslr binary (under mpirun when asked) in a scratch
folder and read its files with h5py."""
import os
import shutil
import subprocess
import tempfile
import unittest

MSLR = os.environ.get("MSLR_BIN", "mslr")
MPIEXEC = os.environ.get("MPIEXEC", "mpirun")
TOOLS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools")
PYTHON = os.environ.get("MSLR_PYTHON", "/usr/bin/python3")

ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
           OMPI_MCA_rmaps_base_oversubscribe="1", OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")


def mslr(*args, np=None, cwd=None, check=True, timeout=600, env=None):
    """Runs mslr ARGS (under mpirun -np NP when np is given); returns the CompletedProcess."""
    cmd = ([MPIEXEC, "-np", str(np), MSLR] if np else [MSLR]) + [str(a) for a in args]
    p = subprocess.run(cmd, cwd=cwd, env=env or ENV, capture_output=True, text=True, timeout=timeout)
    if check and p.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {p.returncode}\nstdout:\n{p.stdout}\nstderr:\n{p.stderr}")
    return p


def tool(name, *args, cwd=None, check=True):
    p = subprocess.run([PYTHON, os.path.join(TOOLS, name)] + [str(a) for a in args], cwd=cwd, env=ENV,
                       capture_output=True, text=True, timeout=300)
    if check and p.returncode != 0:
        raise AssertionError(f"{name} exited {p.returncode}\n{p.stdout}\n{p.stderr}")
    return p


def final_params(path):
    """A checkpoint's shared and per-subject parameters and its logged objective, by name (numpy arrays)."""
    import h5py

    with h5py.File(path, "r") as f:
        out = {"shared": f["shared/params"][...], "objective": f["log/objective"][...]}
        for s in f["subjects"]:
            out[s] = f["subjects"][s]["params"][...]
        return out


def assert_same_fit(test, a, b):
    """The checkpoints at paths a and b hold the same parameters and logged objective, bit for bit."""
    import numpy as np

    pa, pb = final_params(a), final_params(b)
    test.assertEqual(sorted(pa), sorted(pb))
    for k in pa:
        test.assertTrue(np.array_equal(pa[k], pb[k]), f"{k} differs between {a} and {b}")


class ScratchTest(unittest.TestCase):
    """A test case with its own scratch folder, removed afterwards."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="mslr-e2e-")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def path(self, *parts):
        return os.path.join(self.dir, *parts)
