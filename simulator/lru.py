"""A small thread-safe LRU map, shared by the engine's plan cache and the sweep workers' caches (Dask
may run several points at once in the threads of one process)."""
from __future__ import annotations

import threading
from collections import OrderedDict


class Lru:
    """At most ``limit`` entries; the least recently used goes first. Values are never ``None``."""

    def __init__(self, limit: int):
        self.limit, self._d, self._lock = limit, OrderedDict(), threading.Lock()

    def get(self, key):
        with self._lock:
            got = self._d.get(key)
            if got is not None:
                self._d.move_to_end(key)
            return got

    def put(self, key, value) -> None:
        with self._lock:
            self._d[key] = value
            while len(self._d) > self.limit:
                self._d.popitem(last=False)

    def get_or_make(self, key, make):
        """The entry of ``key``, made by ``make()`` (outside the lock) and kept when missing."""
        got = self.get(key)
        if got is None:
            got = make()
            self.put(key, got)
        return got

    def clear(self) -> None:
        with self._lock:
            self._d.clear()
