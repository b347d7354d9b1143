"""Test-only faults on the consensus messages a node sends: each one, per peer, is lost
with a given chance or held back for a random while (which also reorders them), from a
seeded random source. A sealed stream cannot lose single frames, so the loss is done
here, at the sender, where a fault test can reach it. Never on a real network."""

from __future__ import annotations

import heapq
import random
import threading
import time
from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class LossyLinks:
    drop: float = 0.2  # chance that one peer does not get a message
    max_delay: float = 0.3  # seconds a delivered message may be held back
    seed: int = 0


class DelayLine:
    """Sends each message after its delay, on one thread of its own."""

    def __init__(self, faults: LossyLinks, send: Callable[[bytes, object], None]):
        self.faults, self.send = faults, send
        self.rng = random.Random(faults.seed)
        self._heap: list = []
        self._seq = 0
        self._ready = threading.Condition()
        threading.Thread(target=self._run, name="lossy-links", daemon=True).start()

    def offer(self, peer: bytes, message: object) -> bool:
        """Queue `message` for `peer`, or lose it; True if it will be sent."""
        with self._ready:
            if self.rng.random() < self.faults.drop:
                return False
            self._seq += 1
            heapq.heappush(self._heap, (time.monotonic() + self.rng.uniform(0, self.faults.max_delay), self._seq,
                                        peer, message))
            self._ready.notify()
        return True

    def _run(self) -> None:
        while True:
            with self._ready:
                while not self._heap or self._heap[0][0] > time.monotonic():
                    self._ready.wait(None if not self._heap else self._heap[0][0] - time.monotonic())
                _, _, peer, message = heapq.heappop(self._heap)
            self.send(peer, message)
