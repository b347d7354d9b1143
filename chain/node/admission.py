"""Pool admission yields to block work.

A node shares one interpreter lock among everything it does. Under load, admitting
transactions (decoding and signature recovery, thousands a second from clients and
peers) would take most of it, and the block being built or imported would crawl: the
next validator would then begin its step before it has that block, and the chain forks.
So admission waits while a block is built or imported. A block takes a fraction of a
step, so admission still gets most of the time, and transactions are never refused
for it, only delayed.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

LONGEST_WAIT = 2.0  # seconds admission waits at most, whatever holds block work up


class AdmissionGate:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._blocks = 0  # builds and imports in progress
        self._open = threading.Event()
        self._open.set()

    @contextmanager
    def block_work(self) -> Iterator[None]:
        """Close the gate while a block is built or imported."""
        with self._lock:
            self._blocks += 1
            self._open.clear()
        try:
            yield
        finally:
            with self._lock:
                self._blocks -= 1
                if not self._blocks:
                    self._open.set()

    def wait(self) -> None:
        """Return once no block is in work (or after LONGEST_WAIT)."""
        self._open.wait(LONGEST_WAIT)
