"""IB's historical-data pacing rules, each breach answered with error 162.

The published rules: no more than ``max_requests`` (60) requests in any ``window`` (10
minutes); no identical request within ``identical_window`` (15 s); no more than
``same_contract_max`` (6) requests for the same contract, exchange and tick type within
``same_contract_window`` (2 s). IB publishes them as "pacing violations for small bars (30
secs or less)" and only throttles larger bars softly; the simulator applies them to every
request by default, which is stricter (a tool that paces itself for the simulator also paces
itself for IB), and ``small_bars_only=True`` narrows them to IB's published scope.
TWS applies them per TWS session, i.e. across all API clients, which is why one
:class:`Pacer` is shared by every connection. Times are wall-clock seconds (pacing is about
real load on IB's servers, not market time).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass

__all__ = ["PACING_VIOLATION", "Pacer", "PacingKey", "PacingLimits"]

PACING_VIOLATION = (
    "Historical Market Data Service error message:Historical data request pacing violation"
)


@dataclass(frozen=True, slots=True)
class PacingLimits:
    """The pacing rules' numbers; shrink the windows in tests."""

    max_requests: int = 60
    window: float = 600.0
    identical_window: float = 15.0
    same_contract_max: int = 6
    same_contract_window: float = 2.0
    enabled: bool = True
    #: False: only bars of ``small_bar_seconds`` or less are paced (IB's published scope).
    all_bar_sizes: bool = False
    small_bar_seconds: int = 30


@dataclass(frozen=True, slots=True)
class PacingKey:
    """What identifies a request for the "identical request" rule, and its bar size."""

    request: tuple
    bar_seconds: int | None = None


class Pacer:
    """Remembers recent historical requests and says whether a new one breaks a rule."""

    def __init__(self, limits: PacingLimits | None = None, clock=time.monotonic) -> None:
        self.limits = limits or PacingLimits()
        self._clock = clock
        self._lock = threading.Lock()
        self._all: deque[float] = deque()
        self._identical: dict[tuple, float] = {}
        self._by_contract: dict[tuple, deque[float]] = {}

    def applies_to(self, bar_seconds: int | None) -> bool:
        """Whether requests for bars of this many seconds are paced (None: not known)."""
        lim = self.limits
        if not lim.enabled:
            return False
        if lim.all_bar_sizes:
            return True
        return bar_seconds is not None and bar_seconds <= lim.small_bar_seconds

    def check(self, key: PacingKey, contract_key: tuple) -> str | None:
        """Record a request; return the rule it breaks (a short reason) or None.

        ``key`` identifies identical requests; ``contract_key`` is (contract, exchange, tick
        type). A refused request still counts, as it does at IB. Requests the rules do not
        apply to (see :meth:`applies_to`) are neither recorded nor refused.
        """
        lim = self.limits
        if not self.applies_to(key.bar_seconds):
            return None
        now = self._clock()
        with self._lock:
            while self._all and now - self._all[0] >= lim.window:
                self._all.popleft()
            recent = self._by_contract.setdefault(contract_key, deque())
            while recent and now - recent[0] >= lim.same_contract_window:
                recent.popleft()
            last_same = self._identical.get(key)
            reason = None
            if len(self._all) >= lim.max_requests:
                reason = f"more than {lim.max_requests} requests in {lim.window:g} s"
            elif last_same is not None and now - last_same < lim.identical_window:
                reason = f"identical request within {lim.identical_window:g} s"
            elif len(recent) >= lim.same_contract_max:
                reason = (
                    f"more than {lim.same_contract_max} requests for the same contract and "
                    f"tick type within {lim.same_contract_window:g} s"
                )
            self._all.append(now)
            recent.append(now)
            self._identical[key] = now
            if len(self._identical) > 10_000:  # forget stale keys
                cutoff = now - lim.identical_window
                self._identical = {k: t for k, t in self._identical.items() if t >= cutoff}
            return reason
