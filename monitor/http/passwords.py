"""Basic auth's bcrypt checks, scheduled: which runs next, which waits, which is shed.

A bcrypt check takes tens of milliseconds by design (50-80 ms at cost 10 here), and two threads
run them: about 30 a second. The rest wait here, ordered and bounded so that a flood of wrong
passwords, from one address or from a hundred, cannot push a correct first login past a scrape's
timeout:

- a password BasicAuth answers from memory costs no check at all: verified before, refused
  before (a repeated wrong password), or any other password of a user whose password was
  verified (a user has one: guesses at Prometheus's password cost nothing once it logged in);
- the same credentials asked again while their check waits or runs share that check;
- addresses rank by what they did in the last MEMORY seconds: first those with a password
  accepted and none refused (a Prometheus that scrapes here, logging in as another user after
  a password change), then those unheard of, last those with a password refused; oldest waiting
  first within a rank;
- an address has at most one check running and one waiting; at most MAX_WAITING wait in all,
  and a newcomer takes the place of the newest waiting check of a lower rank;
- a check still waiting after WAIT_LIMIT seconds is not made.

A check not made has no answer (None): the exporter says 429 with Retry-After, never 401, for a
password nobody checked. What this cannot do: tell a correct password from the guesses of an
attacker at the same address before bcrypt, when the guesses are at the password of a user
nobody has logged in as yet, each one new. That address has its one waiting place, in turn
with every other failing address, and a correct password that finds it taken is shed
(measured in docs/configuration.md).
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from monitor.http.webconfig import BasicAuth

MAX_WAITING = 24  # checks waiting in all: at ~30 a second, the last is made within a second
WAIT_LIMIT = 0.6  # seconds a check may wait; then it is shed (one check more, and it is 1 s)
MEMORY = 60.0  # seconds an address is remembered for a password accepted or refused
MAX_REMEMBERED = 4096  # addresses remembered, each way (the oldest forgotten first)
TRUSTED, UNKNOWN, FAILING = 0, 1, 2  # the ranks: checked in this order
RETRY_AFTER = 1  # seconds, for a shed check


@dataclass(eq=False)
class _Check:
    address: str
    key: bytes
    authorization: str | None
    rank: int
    answer: asyncio.Future[bool | None]
    timer: asyncio.TimerHandle | None = field(default=None)


class PasswordChecks:
    """The bcrypt checks of one BasicAuth, in `threads` threads, scheduled on the event loop."""

    def __init__(self, auth: BasicAuth, threads: int) -> None:
        self.auth = auth
        self._threads = threads
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="bcrypt")
        self._waiting: dict[str, _Check] = {}  # address -> its check waiting, oldest first
        self._running: set[str] = set()  # addresses with a check running
        self._asked: dict[bytes, asyncio.Future[bool | None]] = {}  # credentials -> their check
        self._accepted: OrderedDict[str, float] = OrderedDict()  # address -> last time
        self._refused: OrderedDict[str, float] = OrderedDict()  # address -> last time

    def close(self) -> None:
        """Let the threads go."""
        self._pool.shutdown(wait=False, cancel_futures=True)

    async def check(self, address: str, authorization: str | None) -> bool | None:
        """Whether the header carries a user's password; None when the check was shed."""
        known = self.auth.remembered(authorization)
        if known is None:
            known = await self._checked(address, authorization)
        if known is not None and authorization is not None:
            _remember(self._accepted if known else self._refused, address)
        return known

    async def _checked(self, address: str, authorization: str | None) -> bool | None:
        key = self.auth.fingerprint(authorization)
        shared = self._asked.get(key)
        if shared is not None:
            return await asyncio.shield(shared)
        loop = asyncio.get_running_loop()
        check = _Check(address, key, authorization, self._rank(address), loop.create_future())
        if not self._admit(check):
            return None
        self._asked[key] = check.answer
        check.answer.add_done_callback(lambda _: self._asked.pop(key, None))
        check.timer = loop.call_later(WAIT_LIMIT, self._shed, check)
        self._waiting[address] = check
        self._next()
        return await asyncio.shield(check.answer)

    def _admit(self, check: _Check) -> bool:
        """Whether the check may wait: room for its address, and in all (made if need be)."""
        if check.address in self._waiting:
            return False
        if len(self._waiting) < MAX_WAITING:
            return True
        lower = [waiting for waiting in self._waiting.values() if waiting.rank > check.rank]
        if not lower:
            return False
        self._shed(max(reversed(lower), key=lambda waiting: waiting.rank))
        return True

    def _shed(self, check: _Check) -> None:
        """The check is not made: its requests are answered None (429)."""
        if self._waiting.get(check.address) is check:
            del self._waiting[check.address]
            if check.timer is not None:
                check.timer.cancel()
            if not check.answer.done():
                check.answer.set_result(None)

    def _next(self) -> None:
        """Start the next checks while a thread is free: the best rank first, then the oldest."""
        while len(self._running) < self._threads:
            ready = [c for c in self._waiting.values() if c.address not in self._running]
            if not ready:
                return
            check = min(ready, key=lambda c: c.rank)  # the first of the best: the oldest
            del self._waiting[check.address]
            if check.timer is not None:
                check.timer.cancel()
            self._running.add(check.address)
            loop = asyncio.get_running_loop()
            done = loop.run_in_executor(self._pool, self.auth.verify, check.authorization)
            done.add_done_callback(functools.partial(self._finished, check))

    def _finished(self, check: _Check, done: asyncio.Future[bool]) -> None:
        self._running.discard(check.address)
        if not check.answer.done():
            if done.cancelled() or done.exception() is not None:
                check.answer.set_result(None)
            else:
                check.answer.set_result(done.result())
        self._next()

    def _rank(self, address: str) -> int:
        """TRUSTED, UNKNOWN or FAILING, by what the address did in the last MEMORY seconds."""
        if _recent(self._refused, address):
            return FAILING
        return TRUSTED if _recent(self._accepted, address) else UNKNOWN


def _recent(seen: OrderedDict[str, float], address: str) -> bool:
    last = seen.get(address)
    return last is not None and time.monotonic() - last <= MEMORY


def _remember(seen: OrderedDict[str, float], address: str) -> None:
    seen[address] = time.monotonic()
    seen.move_to_end(address)
    while len(seen) > MAX_REMEMBERED:
        seen.popitem(last=False)
