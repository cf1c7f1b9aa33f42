"""Client-side pacing for historical-data requests, so TWS never answers 162.

IB's published rules: at most 60 requests in any 10 minutes; no identical request within
15 seconds; fewer than 6 requests for the same contract, exchange and tick type within 2
seconds. :meth:`PacingLimiter.wait` sleeps just long enough before each request to keep all
three; :meth:`PacingLimiter.pause` waits when TWS asks for it (a 162 pacing violation). Both
count the time spent waiting in :attr:`PacingLimiter.waited`.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass

__all__ = ["PacingRules", "PacingLimiter"]


@dataclass(frozen=True)
class PacingRules:
    """The limits; tests may shrink the windows."""

    max_requests: int = 60
    window: float = 600.0
    identical_window: float = 15.0
    per_contract: int = 5  # IB objects to the 6th within the window
    per_contract_window: float = 2.0
    margin: float = 0.05  # seconds of slack on every wait, for clock differences


class PacingLimiter:
    """Thread-safe; call :meth:`wait` right before sending each request."""

    def __init__(
        self,
        rules: PacingRules = PacingRules(),
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.rules = rules
        self._clock, self._sleep = clock, sleep
        self._lock = threading.Lock()
        self._all: deque[float] = deque()
        self._by_contract: dict[Hashable, deque[float]] = {}
        self._identical: dict[Hashable, float] = {}
        #: Requests let through, and seconds spent waiting (rules and TWS's own pauses).
        self.requests = 0
        self.waited = 0.0

    def delay(self, contract: Hashable, request: Hashable) -> float:
        """Seconds to wait before a request for ``contract`` (``request`` identifies it
        completely, for the identical-request rule); 0 if it may go now."""
        r, now = self.rules, self._clock()
        with self._lock:
            self._expire(now)
            waits = [0.0]
            if len(self._all) >= r.max_requests:
                waits.append(self._all[-r.max_requests] + r.window - now)
            recent = self._by_contract.get(contract, ())
            if len(recent) >= r.per_contract:
                waits.append(recent[-r.per_contract] + r.per_contract_window - now)
            if request in self._identical:
                waits.append(self._identical[request] + r.identical_window - now)
            longest = max(waits)
            return longest + r.margin if longest > 0 else 0.0

    def wait(self, contract: Hashable, request: Hashable) -> float:
        """Sleep until the request may go, record it as sent, return the seconds waited."""
        waited = 0.0
        while (pause := self.delay(contract, request)) > 0:
            self._sleep(pause)
            waited += pause
        now = self._clock()
        with self._lock:
            self._all.append(now)
            self._by_contract.setdefault(contract, deque()).append(now)
            self._identical[request] = now
            self.requests += 1
            self.waited += waited
        return waited

    def pause(self, seconds: float) -> float:
        """Sleep ``seconds`` because TWS asked to slow down (it answered 162 although the
        rules were kept: another client may share the window); counted in :attr:`waited`
        like the limiter's own waits. Returns the seconds waited."""
        seconds = max(0.0, float(seconds))
        if seconds:
            self._sleep(seconds)
        with self._lock:
            self.waited += seconds
        return seconds

    def _expire(self, now: float) -> None:
        r = self.rules
        while self._all and self._all[0] <= now - r.window:
            self._all.popleft()
        for times in self._by_contract.values():
            while times and times[0] <= now - r.per_contract_window:
                times.popleft()
        for key in [k for k, t in self._identical.items() if t <= now - r.identical_window]:
            del self._identical[key]
