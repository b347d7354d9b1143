"""Network namespaces for partition tests (root only): each node in a namespace of its
own with two links, one for JSON-RPC to the test (a management bridge the test's own
namespace is on) and one for p2p (a bridge the test can split in two). A partition moves
some nodes' p2p links to a second bridge: the two groups then cannot reach each other,
and the test still reaches everyone."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys


class NetnsUnavailable(RuntimeError):
    """This machine cannot make network namespaces (not root, no `ip`, no support)."""


def _ip(*args: str) -> None:
    result = subprocess.run(["ip", *args], capture_output=True, text=True)
    if result.returncode != 0:
        raise NetnsUnavailable(f"ip {' '.join(args)}: {result.stderr.strip()}")


class Lab:
    def __init__(self, count: int):
        if os.geteuid() != 0:
            raise NetnsUnavailable("network namespaces need root")
        self.tag = secrets.token_hex(2)
        self.count = count
        self.made: list[tuple[str, str]] = []  # (kind, name) to remove
        try:
            self._build()
        except BaseException:
            self.close()
            raise

    def ns(self, k: int) -> str:
        return f"ew{self.tag}n{k}"

    def rpc_host(self, k: int) -> str:
        return f"10.78.{int(self.tag, 16) % 200}.{k + 1}"

    def p2p_host(self, k: int) -> str:
        return f"10.77.{int(self.tag, 16) % 200}.{k + 1}"

    def prefix(self, k: int) -> tuple[str, ...]:
        return ("ip", "netns", "exec", self.ns(k))

    def _bridge(self, name: str) -> None:
        _ip("link", "add", name, "type", "bridge")
        self.made.append(("link", name))
        _ip("link", "set", name, "up")

    def _build(self) -> None:
        t = self.tag
        self.mgmt, self.side_a, self.side_b = f"ew{t}m", f"ew{t}a", f"ew{t}b"
        for bridge in (self.mgmt, self.side_a, self.side_b):
            self._bridge(bridge)
        _ip("addr", "add", f"10.78.{int(t, 16) % 200}.254/24", "dev", self.mgmt)
        for k in range(self.count):
            ns = self.ns(k)
            _ip("netns", "add", ns)
            self.made.append(("netns", ns))
            _ip("-n", ns, "link", "set", "lo", "up")
            for kind, bridge, host in (("m", self.mgmt, self.rpc_host(k)), ("p", self.side_a, self.p2p_host(k))):
                outside, inside = f"ew{t}{kind}{k}", f"ew{t}{kind}{k}i"
                _ip("link", "add", outside, "type", "veth", "peer", "name", inside)
                self.made.append(("link", outside))
                _ip("link", "set", inside, "netns", ns)
                _ip("link", "set", outside, "master", bridge)
                _ip("link", "set", outside, "up")
                _ip("-n", ns, "addr", "add", f"{host}/24", "dev", inside)
                _ip("-n", ns, "link", "set", inside, "up")
        probe = subprocess.run([*self.prefix(0), sys.executable, "-c", "pass"], capture_output=True, text=True)
        if probe.returncode != 0:  # a namespace that nothing can run in
            raise NetnsUnavailable(f"cannot run in a namespace: {probe.stderr.strip()[:200]}")

    def partition(self, group: list[int]) -> None:
        """Cut the nodes in `group` off from the others (they still reach each other)."""
        for k in group:
            _ip("link", "set", f"ew{self.tag}p{k}", "master", self.side_b)

    def heal(self) -> None:
        for k in range(self.count):
            _ip("link", "set", f"ew{self.tag}p{k}", "master", self.side_a)

    def close(self) -> None:
        for kind, name in reversed(self.made):
            subprocess.run(["ip", kind, "del", name], capture_output=True)
        self.made.clear()
