"""A one-node Slurm cluster for tests, on 127.0.0.1 only: munged, slurmctld and slurmd started in a scratch
folder (state, spool, logs, sockets) and stopped afterwards. Use as a context manager; `env` has SLURM_CONF."""
import os
import shutil
import socket
import subprocess
import tempfile
import time


class SlurmUnavailable(Exception):
    pass


class SlurmCluster:
    def __init__(self, cpus=2):
        self.cpus = cpus
        self.dir = None
        self.procs = []

    def __enter__(self):
        for exe in ("munged", "slurmctld", "slurmd", "sbatch", "scontrol"):
            if not shutil.which(exe) and not os.path.exists(f"/usr/sbin/{exe}"):
                raise SlurmUnavailable(f"{exe} is not installed (apt-get install slurmctld slurmd slurm-client munge)")
        self.dir = tempfile.mkdtemp(prefix="mslr-slurm-")
        os.chmod(self.dir, 0o755)  # munged refuses socket folders not searchable by all
        d = self.dir
        for sub in ("munge", "state", "spool", "log"):
            os.makedirs(f"{d}/{sub}", mode=0o755)
        with open(f"{d}/munge/munge.key", "wb") as f:
            f.write(os.urandom(1024))
        os.chmod(f"{d}/munge/munge.key", 0o400)
        sock = f"{d}/munge/munge.socket.2"
        self._run(["/usr/sbin/munged", "--force", f"--socket={sock}", f"--key-file={d}/munge/munge.key",
                   f"--pid-file={d}/munge/munged.pid", f"--log-file={d}/log/munged.log",
                   f"--seed-file={d}/munge/seed"])
        self.munge_pid = int(open(f"{d}/munge/munged.pid").read())
        # The node's name and memory as slurmd itself sees them (it registers under its short host name).
        host, mem = socket.gethostname().split(".")[0], 1024
        try:
            out = subprocess.run(["/usr/sbin/slurmd", "-C"], capture_output=True, text=True).stdout
            host = out.split("NodeName=")[1].split()[0]
            mem = int(out.split("RealMemory=")[1].split()[0])
        except Exception:
            pass
        conf = f"""ClusterName=mslrtest
SlurmctldHost=localhost(127.0.0.1)
CommunicationParameters=NoInAddrAny,NoCtldInAddrAny
SlurmctldPort={self._free_port()}
SlurmdPort={self._free_port()}
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={sock},cred_expire=30
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=pmix
ReturnToService=2
SlurmUser=root
SlurmdUser=root
StateSaveLocation={d}/state
SlurmdSpoolDir={d}/spool
SlurmctldPidFile={d}/slurmctld.pid
SlurmdPidFile={d}/slurmd.pid
SlurmctldLogFile={d}/log/slurmctld.log
SlurmdLogFile={d}/log/slurmd.log
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MailProg=/bin/true
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MinJobAge=600
KillWait=10
NodeName={host} NodeAddr=127.0.0.1 CPUs={self.cpus} RealMemory={mem} State=UNKNOWN
PartitionName=test Nodes={host} Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES
"""
        with open(f"{d}/slurm.conf", "w") as f:
            f.write(conf)
        self.env = dict(os.environ, SLURM_CONF=f"{d}/slurm.conf")
        self._run(["/usr/sbin/slurmctld", "-f", f"{d}/slurm.conf"])
        self._run(["/usr/sbin/slurmd", "-f", f"{d}/slurm.conf"])
        deadline = time.time() + 30
        while time.time() < deadline:
            out = subprocess.run(["sinfo", "-h", "-o", "%T"], env=self.env, capture_output=True, text=True).stdout
            if out.strip().startswith("idle"):
                return self
            time.sleep(0.2)
        logs = "".join(open(f"{d}/log/{n}").read()[-2000:] for n in ("slurmctld.log", "slurmd.log")
                       if os.path.exists(f"{d}/log/{n}"))
        self.__exit__(None, None, None)
        raise SlurmUnavailable("the Slurm node did not become idle:\n" + logs)

    def _run(self, cmd):
        p = subprocess.run(cmd, capture_output=True, text=True)
        if p.returncode != 0:
            self.__exit__(None, None, None)
            raise SlurmUnavailable(f"{' '.join(cmd)} failed: {p.stderr.strip()}")

    @staticmethod
    def _free_port():
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]

    def sbatch(self, *args, env=None):
        """Submits with the submitting environment plus `env` exported to the job (values may hold commas,
        which --export=NAME=VALUE cannot carry)."""
        p = subprocess.run(["sbatch", "--parsable", "--export=ALL", *args], env=dict(self.env, **(env or {})),
                           capture_output=True, text=True)
        if p.returncode != 0:
            raise AssertionError(f"sbatch failed: {p.stderr}")
        return p.stdout.strip().split(";")[0]

    def job(self, job_id):
        out = subprocess.run(["scontrol", "show", "job", "-o", job_id], env=self.env, capture_output=True,
                             text=True).stdout
        return dict(kv.split("=", 1) for kv in out.split() if "=" in kv)

    def wait(self, job_id, timeout=600):
        deadline = time.time() + timeout
        while time.time() < deadline:
            info = self.job(job_id)
            if info.get("JobState") in ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY"):
                return info
            time.sleep(1)
        raise AssertionError(f"job {job_id} did not finish in {timeout} s: {self.job(job_id)}")

    def __exit__(self, *exc):
        if not self.dir:
            return
        d = self.dir
        env = getattr(self, "env", None)
        if env:
            subprocess.run(["scancel", "--full", "--quiet", "-u", "root"], env=env, capture_output=True)
            subprocess.run(["scontrol", "shutdown"], env=env, capture_output=True, timeout=30)
            time.sleep(1)
        for pidfile in ("slurmd.pid", "slurmctld.pid", "munge/munged.pid"):
            try:
                os.kill(int(open(f"{d}/{pidfile}").read()), 9)
            except Exception:
                pass
        shutil.rmtree(d, ignore_errors=True)
        self.dir = None
