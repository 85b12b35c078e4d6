"""Machines on this one: network namespaces on a bridge, made and removed by a test.

A :class:`Network` is a Linux bridge with an address of this host on a
private /24 of its own, and a namespace per machine joined to it by a veth
pair. Every name carries a tag of the run, and the /24 is one no route of
this host uses yet, so parallel runs do not collide. The host's own
processes (the stores) bind the bridge's address; the machines' processes
run with :meth:`Network.command` and bind their machine's address. Needs
root and iproute2's ``ip``; :func:`unavailable` says why not when they are
missing.
"""

import ipaddress
import os
import random
import secrets
import shutil
import signal
import subprocess
from typing import Dict
from typing import List
from typing import Optional


def unavailable() -> Optional[str]:
    """Why namespaces cannot be made here, or None when they can."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip") is None:
        return "network namespaces need iproute2's ip command"
    return None


def _ip(*args: str) -> str:
    return subprocess.run(
        ["ip", *args], check=True, capture_output=True, text=True, timeout=30
    ).stdout


def _networks_in_use() -> List[ipaddress.IPv4Network]:
    """The IPv4 networks of this host's routes and addresses."""
    found = []
    for line in _ip("-4", "route").splitlines() + _ip("-4", "-o", "addr").split("\n"):
        for word in line.split():
            try:
                found.append(ipaddress.ip_network(word, strict=False))
            except ValueError:
                continue
    return [net for net in found if net.prefixlen > 0]


def _free_subnet() -> ipaddress.IPv4Network:
    """A /24 in 10.0.0.0/8 that no route or address of this host overlaps."""
    used = _networks_in_use()
    for _ in range(100):
        net = ipaddress.ip_network(
            f"10.{random.randint(64, 254)}.{random.randint(0, 255)}.0/24"
        )
        if not any(net.overlaps(other) for other in used):
            return net
    raise RuntimeError("no free /24 in 10.0.0.0/8")


class Machine:
    """One namespace: its name and address."""

    def __init__(self, label: str, namespace: str, address: str):
        self.label = label
        self.namespace = namespace
        self.address = address


class Network:
    """A bridge and namespaces on it; :meth:`close` removes all they hold."""

    def __init__(self):
        self.tag = secrets.token_hex(3)
        self.subnet = _free_subnet()
        hosts = list(self.subnet.hosts())
        self._addresses = iter(hosts[1:])
        #: This host's address on the bridge (the stores bind it).
        self.host = str(hosts[0])
        self.bridge = f"fpbr{self.tag}"
        self.machines: Dict[str, Machine] = {}
        self._made_bridge = False

    def start(self) -> "Network":
        _ip("link", "add", "name", self.bridge, "type", "bridge")
        self._made_bridge = True
        _ip("addr", "add", f"{self.host}/{self.subnet.prefixlen}", "dev", self.bridge)
        _ip("link", "set", self.bridge, "up")
        return self

    def add(self, label: str) -> Machine:
        """A new namespace on the bridge, named after ``label``."""
        number = len(self.machines) + 1
        namespace = f"fp-{self.tag}-{label}"
        # Interface names are at most 15 characters.
        outside = f"fpv{self.tag}{number}"
        address = str(next(self._addresses))
        _ip("netns", "add", namespace)
        self.machines[label] = machine = Machine(label, namespace, address)
        peer = ["peer", "name", "eth0", "netns", namespace]
        _ip("link", "add", outside, "type", "veth", *peer)
        _ip("link", "set", outside, "master", self.bridge, "up")
        inside = ["netns", "exec", namespace, "ip"]
        _ip(*inside, "addr", "add", f"{address}/{self.subnet.prefixlen}", "dev", "eth0")
        _ip(*inside, "link", "set", "eth0", "up")
        _ip(*inside, "link", "set", "lo", "up")
        return machine

    def add_host_address(self) -> str:
        """Another address of this host on the bridge (a client of its own)."""
        address = str(next(self._addresses))
        _ip("addr", "add", f"{address}/32", "dev", self.bridge)
        return address

    def command(self, label: str, args: List[str]) -> List[str]:
        """``args`` run in the namespace of machine ``label``."""
        return ["ip", "netns", "exec", self.machines[label].namespace, *args]

    def close(self) -> None:
        """SIGKILL what runs in the namespaces, then remove them and the bridge."""
        for machine in self.machines.values():
            try:
                pids = _ip("netns", "pids", machine.namespace).split()
            except subprocess.CalledProcessError:
                pids = []
            for pid in pids:
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except ProcessLookupError:
                    pass
            # Removing the namespace removes its end of the veth pair, and so
            # the pair.
            subprocess.run(["ip", "netns", "del", machine.namespace], check=False)
        if self._made_bridge:
            subprocess.run(["ip", "link", "del", self.bridge], check=False)
