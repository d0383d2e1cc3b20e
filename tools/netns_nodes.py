#!/usr/bin/env python3
"""Two nodes on one machine: network namespaces as hosts with their own addresses, and the mpirun arguments
that start one Open MPI daemon in each (through an rsh agent that enters the namespace) so that ranks talk over
TCP and count their node-local ranks per node, as on a cluster. Used by tests/e2e/test_multinode.py and
tools/scaling_model.py; needs root (CAP_NET_ADMIN) and iproute2.

Addresses come only from 198.18.0.0/15 (reserved for benchmarking network devices), a /24 of it per process,
and everything is made inside namespaces this module creates and removes.

    with netns_nodes.Nodes(folder) as nodes:       # raises netns_nodes.Unavailable with the reason
        subprocess.run(nodes.mpirun(ranks_per_node=2) + ["mslr", "fit", ...])
"""
import os
import shutil
import subprocess
import tempfile
import unittest


class Unavailable(Exception):
    """Namespaces cannot be made here; the message says why."""


def for_test(prefix):
    """A scratch folder and entered Nodes for a test class; unittest.SkipTest, with the reason, where namespaces
    cannot be made (the folder removed)."""
    folder = tempfile.mkdtemp(prefix=prefix)
    nodes = Nodes(folder)
    try:
        nodes.__enter__()
    except Unavailable as e:
        shutil.rmtree(folder, ignore_errors=True)
        raise unittest.SkipTest(str(e))
    return folder, nodes


class Nodes:
    def __init__(self, folder):
        tag = os.getpid() % 100000
        self.subnet = f"198.18.{os.getpid() % 250 + 1}"
        self.prefix = f"ms{tag}n"  # namespaces PREFIX2, PREFIX3 (interface names <= 15 characters)
        self.bridge = f"ms{tag}b"
        self.hosts = [f"{self.subnet}.2", f"{self.subnet}.3"]
        self.namespaces = [f"{self.prefix}2", f"{self.prefix}3"]
        self.agent = os.path.join(folder, "nsrsh")

    def __enter__(self):
        if shutil.which("ip") is None:
            raise Unavailable("no 'ip' command (iproute2)")
        steps = [["ip", "link", "add", self.bridge, "type", "bridge"],
                 ["ip", "addr", "add", f"{self.subnet}.1/24", "dev", self.bridge],
                 ["ip", "link", "set", self.bridge, "up"]]
        for i in (2, 3):
            ns, veth = f"{self.prefix}{i}", f"{self.prefix}v{i}"
            steps += [["ip", "netns", "add", ns],
                      ["ip", "link", "add", veth, "type", "veth", "peer", "name", veth + "p"],
                      ["ip", "link", "set", veth + "p", "netns", ns],
                      ["ip", "link", "set", veth, "master", self.bridge],
                      ["ip", "link", "set", veth, "up"],
                      ["ip", "netns", "exec", ns, "ip", "addr", "add", f"{self.subnet}.{i}/24", "dev", veth + "p"],
                      ["ip", "netns", "exec", ns, "ip", "link", "set", veth + "p", "up"],
                      ["ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up"]]
        for step in steps:
            p = subprocess.run(step, capture_output=True, text=True)
            if p.returncode != 0:
                self.remove()
                raise Unavailable(f"cannot make network namespaces here: '{' '.join(step)}' said "
                                  f"{p.stderr.strip()}")
        # The rsh agent: "AGENT HOST COMMAND..." runs the command in the namespace of HOST's last number.
        with open(self.agent, "w") as f:
            f.write(f'#!/bin/sh\nhost="$1"; shift\nexec ip netns exec {self.prefix}"${{host##*.}}" /bin/sh -c "$*"\n')
        os.chmod(self.agent, 0o755)
        return self

    def __exit__(self, *exc):
        self.remove()

    def remove(self):
        for ns in self.namespaces:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        subprocess.run(["ip", "link", "del", self.bridge], capture_output=True)

    def mpirun(self, ranks_per_node, mpiexec="mpirun"):
        """mpirun and its arguments for `ranks_per_node` ranks on each of the two nodes (unbound)."""
        return [mpiexec, "--host", ",".join(f"{h}:{ranks_per_node}" for h in self.hosts),
                "-np", str(2 * ranks_per_node), "--mca", "plm_rsh_agent", self.agent,
                "--mca", "oob_tcp_if_include", f"{self.subnet}.0/24",
                "--mca", "btl_tcp_if_include", f"{self.subnet}.0/24", "--mca", "btl", "self,tcp",
                "--mca", "routed", "direct", "--bind-to", "none",
                # Each daemon would otherwise put the node's hwloc topology in shared memory at an address
                # picked from the biggest hole of its address space, and Open MPI 4.1's orted was seen to crash
                # there now and then (a segmentation fault in hwloc_shmem_topology_write, before any rank).
                "--mca", "rtc_hwloc_vmhole", "none"]
