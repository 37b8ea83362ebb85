"""Basic auth's bcrypt checks, scheduled: which runs next, which waits, which is shed.

A bcrypt check takes tens of milliseconds by design (50-80 ms at cost 10 here), and two threads
run them: about 30 a second. The rest wait here, ordered and bounded so that a flood of wrong
passwords, from one address or from a hundred, cannot push a correct first login past a scrape's
timeout:

- a password BasicAuth answers from memory costs no check at all: verified before, refused
  before (a repeated wrong password), or any other password of a user whose password was
  verified (a user has one: guesses at Prometheus's password cost nothing once it logged in);
- the same credentials asked again while their check waits or runs share that check;
- a user at an address ranks by what was seen in the last MEMORY seconds: last, a user whose
  password was refused there, or any user at an address where ROTATION users were refused (a
  guesser trying names); first, a user at an address where a password was accepted (a
  Prometheus that scrapes here, logging in as another user after a password change); between
  them, the rest; oldest waiting first within a rank. So a guesser at one user's password does
  not push back another user's first login from the same address (a NAT);
- an address has at most one check running and PER_ADDRESS waiting, one per user; at most
  MAX_WAITING wait in all; a newcomer takes the place of the newest waiting check of a lower
  rank, of its own address first;
- a check still waiting after WAIT_LIMIT seconds is not made.

A check not made has no answer (None): the exporter says 429 with Retry-After, never 401, for a
password nobody checked. What this cannot do: tell a correct password from the guesses of an
attacker at the same address before bcrypt, when the guesses are at the same user's password
(one nobody has logged in as yet), each one new, or at ever new user names. Then that login
ranks with the guesses, in turn with every other failing address, and is shed when it finds
no place (measured in docs/configuration.md).
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TypeVar

from monitor.http.webconfig import BasicAuth

MAX_WAITING = 24  # checks waiting in all: at ~30 a second, the last is made within a second
WAIT_LIMIT = 0.6  # seconds a check may wait; then it is shed (one check more, and it is 1 s)
MEMORY = 60.0  # seconds an address is remembered for a password accepted or refused
MAX_REMEMBERED = 4096  # addresses remembered, each way (the oldest forgotten first)
PER_ADDRESS = 2  # checks waiting per address (one per user)
ROTATION = 3  # users refused at an address in MEMORY: every other user there ranks last too
TRUSTED, UNKNOWN, FAILING = 0, 1, 2  # the ranks: checked in this order
RETRY_AFTER = 1  # seconds, for a shed check


Who = tuple[str, str]  # (client address, user name)
T = TypeVar("T")


@dataclass(eq=False)
class _Check:
    who: Who
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
        self._waiting: dict[Who, _Check] = {}  # a user at an address -> its check, oldest first
        self._running: set[str] = set()  # addresses with a check running
        self._asked: dict[bytes, asyncio.Future[bool | None]] = {}  # credentials -> their check
        self._accepted: OrderedDict[str, float] = OrderedDict()  # address -> last time
        # address -> the users refused there (at most ROTATION), each with its last time
        self._refused: OrderedDict[str, OrderedDict[str, float]] = OrderedDict()

    def close(self) -> None:
        """Let the threads go."""
        self._pool.shutdown(wait=False, cancel_futures=True)

    async def check(self, address: str, authorization: str | None) -> bool | None:
        """Whether the header carries a user's password; None when the check was shed."""
        known = self.auth.remembered(authorization)
        who = (address, self.auth.user_of(authorization))
        if known is None:
            known = await self._checked(who, authorization)
        if known and authorization is not None:
            _remember(self._accepted, address, time.monotonic())
        elif known is not None and authorization is not None:
            self._note_refused(who)
        return known

    async def _checked(self, who: Who, authorization: str | None) -> bool | None:
        key = self.auth.fingerprint(authorization)
        shared = self._asked.get(key)
        if shared is not None:
            return await asyncio.shield(shared)
        loop = asyncio.get_running_loop()
        check = _Check(who, key, authorization, self._rank(who), loop.create_future())
        if not self._admit(check):
            return None
        self._asked[key] = check.answer
        check.answer.add_done_callback(lambda _: self._asked.pop(key, None))
        check.timer = loop.call_later(WAIT_LIMIT, self._shed, check)
        self._waiting[who] = check
        self._next()
        return await asyncio.shield(check.answer)

    def _admit(self, check: _Check) -> bool:
        """Whether the check may wait: room for its user at its address, for its address (made
        by shedding a lower rank there), and in all (made if need be)."""
        if check.who in self._waiting:
            return False
        address = check.who[0]
        mine = [waiting for who, waiting in self._waiting.items() if who[0] == address]
        if len(mine) >= PER_ADDRESS and not self._make_room(mine, check.rank):
            return False
        return len(self._waiting) < MAX_WAITING or self._make_room(
            list(self._waiting.values()), check.rank
        )

    def _make_room(self, among: list[_Check], rank: int) -> bool:
        """Shed the newest of the lowest-ranked checks below `rank` among these, if any."""
        lower = [waiting for waiting in among if waiting.rank > rank]
        if not lower:
            return False
        self._shed(max(reversed(lower), key=lambda waiting: waiting.rank))
        return True

    def _shed(self, check: _Check) -> None:
        """The check is not made: its requests are answered None (429)."""
        if self._waiting.get(check.who) is check:
            del self._waiting[check.who]
            if check.timer is not None:
                check.timer.cancel()
            if not check.answer.done():
                check.answer.set_result(None)

    def _next(self) -> None:
        """Start the next checks while a thread is free: the best rank first, then the oldest."""
        while len(self._running) < self._threads:
            ready = [c for c in self._waiting.values() if c.who[0] not in self._running]
            if not ready:
                return
            check = min(ready, key=lambda c: c.rank)  # the first of the best: the oldest
            del self._waiting[check.who]
            if check.timer is not None:
                check.timer.cancel()
            self._running.add(check.who[0])
            loop = asyncio.get_running_loop()
            done = loop.run_in_executor(self._pool, self.auth.verify, check.authorization)
            done.add_done_callback(functools.partial(self._finished, check))

    def _finished(self, check: _Check, done: asyncio.Future[bool]) -> None:
        self._running.discard(check.who[0])
        if not check.answer.done():
            if done.cancelled() or done.exception() is not None:
                check.answer.set_result(None)
            else:
                check.answer.set_result(done.result())
        self._next()

    def _rank(self, who: Who) -> int:
        """TRUSTED, UNKNOWN or FAILING, by what was seen in the last MEMORY seconds."""
        address, user = who
        now = time.monotonic()
        refused: dict[str, float] = self._refused.get(address) or {}
        recent = [name for name, last in refused.items() if now - last <= MEMORY]
        if user in recent or len(recent) >= ROTATION:
            return FAILING
        last = self._accepted.get(address)
        return TRUSTED if last is not None and now - last <= MEMORY else UNKNOWN

    def _note_refused(self, who: Who) -> None:
        address, user = who
        users = self._refused.get(address) or OrderedDict()
        _remember(users, user, time.monotonic(), ROTATION)
        _remember(self._refused, address, users)


def _remember(seen: OrderedDict[str, T], key: str, value: T, most: int = MAX_REMEMBERED) -> None:
    """The key's value, the key last; the oldest forgotten past `most`."""
    seen[key] = value
    seen.move_to_end(key)
    while len(seen) > most:
        seen.popitem(last=False)
