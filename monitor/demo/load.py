"""Steady synthetic logins against the stand-in app's callback."""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass

import httpx

from monitor.demo.app import LOGIN_PREFIX

WORKERS = 4  # enough that one stuck request (a lock queue) does not stop the load
NEW_USER_SHARE = 0.1
REQUEST_TIMEOUT = 15.0


@dataclass
class LoadCounts:
    """Logins answered 200, and logins that failed or got another answer."""

    ok: int = 0
    failed: int = 0


class Load:
    """WORKERS threads logging users in at `rate` logins per second in total."""

    def __init__(self, callback_url: str, users: int, rate: float, seed: int = 1) -> None:
        self._url = callback_url
        self._users = users
        self._period = WORKERS / rate
        self._random = random.Random(seed)  # noqa: S311 - not for security: picks demo users
        self._stop = threading.Event()
        self._counts_lock = threading.Lock()
        self.counts = LoadCounts()
        self._new_users = 0
        self._threads = [
            threading.Thread(target=self._work, name=f"demo-load-{n}", daemon=True)
            for n in range(WORKERS)
        ]

    def start(self) -> None:
        """Start logging users in."""
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        """Stop, waiting for requests in flight (each is bounded by its timeout)."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=REQUEST_TIMEOUT + 1)

    def _work(self) -> None:
        with httpx.Client(timeout=REQUEST_TIMEOUT, trust_env=False) as client:
            next_at = time.monotonic()
            while not self._stop.wait(max(0.0, next_at - time.monotonic())):
                next_at = max(next_at + self._period, time.monotonic())
                self._count(self._log_in(client))

    def _log_in(self, client: httpx.Client) -> bool:
        try:
            answer = client.post(self._url, json={"code": LOGIN_PREFIX + self._next_user()})
        except httpx.HTTPError:
            return False
        return answer.status_code == 200

    def _next_user(self) -> str:
        with self._counts_lock:
            if self._random.random() < NEW_USER_SHARE:
                self._new_users += 1
                return f"tu_new_{self._new_users}"
            return f"tu_{self._random.randint(1, self._users)}"

    def _count(self, ok: bool) -> None:
        with self._counts_lock:
            if ok:
                self.counts.ok += 1
            else:
                self.counts.failed += 1
