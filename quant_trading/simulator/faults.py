"""Fault injection: what goes wrong with a real TWS, on demand or on a schedule.

* TWS loses its link to IB while the API socket stays up: error 1100 to every client (and the
  farm-broken notices 2103/2105), no market data while down, then 1101 (data lost: the client
  must renew its subscriptions; the simulator cancels them) or 1102 (data maintained: streams
  resume).
* The socket itself dropped: every client connection is closed; new connections are accepted.
* Added latency: every message to clients leaves that many seconds late (in order).

:class:`FaultPlan` is the schedule form (CLI flags); the server's control methods
(``lose_link``, ``restore_link``, ``drop_connections``, ``set_latency``) are the on-demand form.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["FARM_BROKEN", "FARM_OK", "FaultPlan", "LINK_LOST", "LINK_RESTORED"]

LINK_LOST = (1100, "Connectivity between IB and Trader Workstation has been lost.")
LINK_RESTORED = {
    True: (1101, "Connectivity between IB and Trader Workstation has been restored - data lost."),
    False: (
        1102,
        "Connectivity between IB and Trader Workstation has been restored - data maintained.",
    ),
}

#: Farm notices sent after startApi (id -1), as in the recorded TWS session.
FARM_OK = (
    (2104, "Market data farm connection is OK:usfarm"),
    (2106, "HMDS data farm connection is OK:ushmds"),
    (2158, "Sec-def data farm connection is OK:secdefnj"),
)
FARM_BROKEN = (
    (2103, "Market data farm connection is broken:usfarm"),
    (2105, "HMDS data farm connection is broken:ushmds"),
)


@dataclass(frozen=True, slots=True)
class FaultPlan:
    """Faults to inject at fixed times after the server starts (real seconds)."""

    link_loss_at: float | None = None
    link_loss_for: float = 10.0
    link_loss_data_lost: bool = True
    drop_at: float | None = None
    latency: float = 0.0
