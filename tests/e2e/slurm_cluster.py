"""A Slurm cluster for tests: munged, slurmctld and slurmd started in a scratch folder (state, spool, logs,
sockets) and stopped afterwards. Use as a context manager; `env` has SLURM_CONF.

One node by default, on 127.0.0.1 only. Given `nodes` (an entered tools/netns_nodes.Nodes), two nodes: one
slurmd in each network namespace under its own node name (`slurmd -N`), listening on that namespace's address,
and slurmctld in the first node's namespace, so that `srun -N2` starts a task on each as on a cluster. Only
the munge socket and the files are shared, as a cluster shares its file system."""
import os
import shutil
import socket
import subprocess
import tempfile
import time


class SlurmUnavailable(Exception):
    pass


class SlurmCluster:
    def __init__(self, cpus=2, nodes=None):
        self.cpus = cpus
        self.nodes = nodes
        self.dir = None
        self.procs = []

    def __enter__(self):
        for exe in ("munged", "slurmctld", "slurmd", "sbatch", "scontrol"):
            if not shutil.which(exe) and not os.path.exists(f"/usr/sbin/{exe}"):
                raise SlurmUnavailable(f"{exe} is not installed (apt-get install slurmctld slurmd slurm-client munge)")
        self.dir = tempfile.mkdtemp(prefix="mslr-slurm-")
        os.chmod(self.dir, 0o755)  # munged refuses socket folders not searchable by all
        d = self.dir
        for sub in ("munge", "state", "spool", "log", "tmp"):
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
        if self.nodes is None:
            names, addrs, ctld = [host], ["127.0.0.1"], "localhost(127.0.0.1)"
            # Without these the daemons would listen on every address of the machine.
            binding = "CommunicationParameters=NoInAddrAny,NoCtldInAddrAny\n"
        else:
            names = [f"mslrnode{i + 1}" for i in range(len(self.nodes.hosts))]
            # slurmctld runs in the first node's namespace (the machine's host name resolves to a loopback
            # address, which NoCtldInAddrAny would bind, so it cannot listen on the bridge from here). Inside a
            # namespace every daemon and srun may listen on any address: there are only its loopback and its own
            # 198.18 address.
            addrs, ctld, binding = self.nodes.hosts, f"{host}({self.nodes.hosts[0]})", ""
        node_lines = "\n".join(f"NodeName={n} NodeAddr={a} CPUs={self.cpus} RealMemory={mem} State=UNKNOWN"
                                for n, a in zip(names, addrs))
        self.node_names = names
        # %n: each slurmd its own spool folder, pid file and log (they share the file system).
        many = "-%n" if self.nodes is not None else ""
        conf = f"""ClusterName=mslrtest
SlurmctldHost={ctld}
{binding}SlurmctldPort={self._free_port()}
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
SlurmdSpoolDir={d}/spool{many}
TmpFS={d}/tmp
SlurmctldPidFile={d}/slurmctld.pid
SlurmdPidFile={d}/slurmd{many}.pid
SlurmctldLogFile={d}/log/slurmctld.log
SlurmdLogFile={d}/log/slurmd{many}.log
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MailProg=/bin/true
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MinJobAge=600
KillWait=10
{node_lines}
PartitionName=test Nodes={",".join(names)} Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES
"""
        with open(f"{d}/slurm.conf", "w") as f:
            f.write(conf)
        self.env = dict(os.environ, SLURM_CONF=f"{d}/slurm.conf")
        self._run(self._in_node(0) + ["/usr/sbin/slurmctld", "-f", f"{d}/slurm.conf"])
        if self.nodes is None:
            self._run(["/usr/sbin/slurmd", "-f", f"{d}/slurm.conf"])
        else:
            for i, name in enumerate(names):
                os.makedirs(f"{d}/spool-{name}", mode=0o755)
                # Each node its own TmpFS (PMIx makes its per-step folders there, named by job and step only):
                # a private mount of the folder, in a mount namespace of the node's slurmd.
                os.makedirs(f"{d}/tmp-{name}", mode=0o755)
                self._run(self._in_node(i) + [
                    "unshare", "--mount", "--propagation", "private", "/bin/sh", "-c",
                    f'mount --bind "{d}/tmp-{name}" "{d}/tmp" && exec "$@"', "sh",
                    "/usr/sbin/slurmd", "-f", f"{d}/slurm.conf", "-N", name])
        deadline = time.time() + 30
        while time.time() < deadline:
            out = subprocess.run(["sinfo", "-h", "-N", "-o", "%T"], env=self.env, capture_output=True,
                                 text=True).stdout.split()
            if len(out) == len(names) and all(state == "idle" for state in out):
                return self
            time.sleep(0.2)
        logs = "".join(open(f"{d}/log/{n}").read()[-2000:] for n in os.listdir(f"{d}/log")
                       if n.startswith("slurm"))
        self.__exit__(None, None, None)
        raise SlurmUnavailable("the Slurm node did not become idle:\n" + logs)

    def _in_node(self, i):
        """The prefix that runs a command in node i's network namespace (nothing with one node). nsenter, not
        `ip netns exec`: that mounts a sysfs of its own, without the cgroup file system slurmd needs."""
        if self.nodes is None:
            return []
        return ["nsenter", f"--net=/run/netns/{self.nodes.namespaces[i]}"]

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
        pidfiles = ["slurmd.pid"] + [f"slurmd-{n}.pid" for n in getattr(self, "node_names", [])]
        for pidfile in pidfiles + ["slurmctld.pid", "munge/munged.pid"]:
            try:
                os.kill(int(open(f"{d}/{pidfile}").read()), 9)
            except Exception:
                pass
        shutil.rmtree(d, ignore_errors=True)
        self.dir = None
