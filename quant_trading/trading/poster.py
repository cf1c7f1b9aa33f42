"""Posting paper fills to the web dashboard (``/api/simulated-orders/``), so that they show
in its blotter.

A post that fails (the dashboard is down, busy, or refuses the token) is tried again later,
in the order the fills were made; each fill is posted with its client order id, which the
dashboard stores once, so a post repeated after a lost answer does not double the order.
What landed is remembered in the folder's ``posted.csv``; fills that were never posted are
posted after a restart. Loopback only: the dashboard runs beside the paper trader.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Callable, Iterable
from urllib.parse import urlsplit

from .blotter import PaperFolder
from .orders import PaperFill

__all__ = ["Poster", "check_dashboard_url", "order_payload"]

log = logging.getLogger(__name__)

ENDPOINT = "/api/simulated-orders/"


def check_dashboard_url(url: str) -> str:
    """``url`` without a trailing slash if it is an http URL on this machine; ValueError
    (one line) otherwise: nothing here talks beyond loopback."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme not in ("http", "https") or not host:
        raise ValueError(f"--post-to {url!r}: use the dashboard's URL, e.g. http://127.0.0.1:8000")
    if host != "localhost":
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            raise ValueError(
                f"--post-to {url!r}: only a dashboard on this machine (127.0.0.1, ::1, localhost)"
            )
    return url.rstrip("/")


def order_payload(fill: PaperFill) -> dict:
    """The JSON a fill is posted as."""
    return {
        "client_order_id": fill.client_order_id,
        "executed_at": fill.time.isoformat(),
        "symbol": fill.symbol,
        "side": fill.action,
        "quantity": fill.shares,
        "price": fill.price,
        "commission": fill.commission,
        "strategy": f"{fill.strategy.split('.')[0]} {fill.timeframe}",
        "note": f"paper trader: {fill.reason}",
    }


class Poster:
    """Posts fills in a thread of its own, retrying every ``retry_every`` seconds while the
    dashboard does not take them. ``output`` gets one line when posting starts failing and
    one when it works again."""

    def __init__(
        self,
        url: str,
        folder: PaperFolder,
        token: str | None = None,
        output: Callable[[str], None] = print,
        retry_every: float = 5.0,
        timeout: float = 5.0,
    ) -> None:
        self.url = check_dashboard_url(url) + ENDPOINT
        self.folder, self.token, self.output = folder, token, output
        self.retry_every, self.timeout = retry_every, timeout
        self.outcomes = folder.posted()
        self._queue: deque[PaperFill] = deque()
        self._lock = threading.Condition()
        self._stop = False
        self._failing: str | None = None
        self._thread = threading.Thread(target=self._run, name="paper-poster", daemon=True)

    def start(self, backlog: Iterable[PaperFill] = ()) -> None:
        """Queue the fills not posted yet (from the blotter) and start posting."""
        self.submit(backlog)
        self._thread.start()

    def submit(self, fills: Iterable[PaperFill]) -> None:
        """Queue fills to post (those posted before are skipped)."""
        with self._lock:
            self._queue.extend(f for f in fills if f.client_order_id not in self.outcomes)
            self._lock.notify_all()

    @property
    def pending(self) -> int:
        """Fills not posted yet."""
        with self._lock:
            return len(self._queue)

    def close(self, wait: float = 5.0) -> int:
        """Try to post what is queued for up to ``wait`` seconds, then stop; returns how many
        fills are left for the next run."""
        deadline = time.monotonic() + wait
        with self._lock:
            while self._queue and self._thread.is_alive() and time.monotonic() < deadline:
                self._lock.wait(min(0.1, max(0.0, deadline - time.monotonic())))
            self._stop = True
            self._lock.notify_all()
        self._thread.join(timeout=self.timeout + 1)
        return self.pending

    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._queue and not self._stop:
                    self._lock.wait()
                if self._stop:
                    return
                fill = self._queue[0]
            outcome = self._post(fill)
            with self._lock:
                if outcome is None:  # try again later
                    self._lock.wait(self.retry_every)
                    continue
                self._queue.popleft()
                self.outcomes[fill.client_order_id] = outcome
                self.folder.save_posted(self.outcomes)
                self._lock.notify_all()

    def _post(self, fill: PaperFill) -> str | None:
        """``posted`` or ``refused: ...`` for good; None to retry."""
        body = json.dumps(order_payload(fill)).encode()
        request = urllib.request.Request(self.url, data=body, method="POST")
        request.add_header("Content-Type", "application/json")
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as answer:
                answer.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read()[:300].decode("utf-8", "replace")
            if exc.code in (400, 409, 422):  # the dashboard will never take it as it is
                self.output(f"dashboard refused {fill.client_order_id} ({exc.code}): {detail}")
                return f"refused: {exc.code}"
            return self._failed(f"HTTP {exc.code} {detail}".strip())
        except (urllib.error.URLError, OSError) as exc:
            return self._failed(str(getattr(exc, "reason", exc)))
        if self._failing is not None:
            self.output(f"posting to {self.url} works again")
            self._failing = None
        return "posted"

    def _failed(self, why: str) -> None:
        if self._failing is None:
            self.output(
                f"could not post to {self.url} ({why}); retrying every {self.retry_every:g} s"
            )
        self._failing = why
        log.info("post failed: %s", why)
        return None
