"""How an indicator is drawn: the hints a strategy declares, the backtest cache stores, and
the charts read, without importing the strategy.

Pure data, no numba and no matplotlib, so readers of the cache stay light.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any, Literal

__all__ = ["PRICE_PANEL", "Line", "Plot", "Drawing", "macd_drawing"]

#: The panel name that means "drawn over the candles".
PRICE_PANEL = "price"


@dataclass(frozen=True)
class Line:
    """How one output column is drawn: a line, or a histogram coloured by sign."""

    column: str
    label: str
    style: Literal["line", "histogram"] = "line"
    color: str | None = None  # None: the chart picks one from its palette


@dataclass(frozen=True)
class Plot:
    """Where an indicator is drawn: over the candles (``panel="price"``) or in a panel of its
    own below them (indicators naming the same panel share it), with horizontal reference
    ``levels`` (RSI 30/70, MACD 0) and optional fixed y ``limits``."""

    panel: str = PRICE_PANEL
    levels: tuple[float, ...] = ()
    limits: tuple[float, float] | None = None

    @property
    def overlay(self) -> bool:
        """True when drawn on the price panel."""
        return self.panel == PRICE_PANEL


@dataclass(frozen=True)
class Drawing:
    """One indicator's drawing: where (``plot``) and its ``lines``."""

    plot: Plot
    lines: tuple[Line, ...]

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-able form (the cache's ``indicators`` entries)."""
        return {
            "panel": self.plot.panel,
            "levels": list(self.plot.levels),
            "limits": list(self.plot.limits) if self.plot.limits else None,
            "lines": [
                {"column": x.column, "label": x.label, "style": x.style, "color": x.color}
                for x in self.lines
            ],
        }

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> Drawing:
        """Inverse of :meth:`as_dict`; KeyError/TypeError/ValueError on a malformed entry."""
        style = {"line", "histogram"}
        lines = []
        for x in doc["lines"]:
            if x.get("style", "line") not in style:
                raise ValueError(f"unknown line style {x.get('style')!r}")
            lines.append(
                Line(
                    str(x["column"]),
                    str(x.get("label") or x["column"]),
                    x.get("style", "line"),
                    x.get("color"),
                )  # fmt: skip
            )
        limits = doc.get("limits")
        return cls(
            Plot(
                panel=str(doc.get("panel") or PRICE_PANEL),
                levels=tuple(float(v) for v in doc.get("levels") or ()),
                limits=(float(limits[0]), float(limits[1])) if limits else None,
            ),
            tuple(lines),
        )


@cache  # frozen, and asked for by every MACD a parameter search makes
def macd_drawing(names: tuple[str, str, str] = ("MACD", "Signal", "Hist")) -> Drawing:
    """MACD's look: the MACD and Signal lines and the Hist histogram in a panel with a zero
    line (also what a schema-1 cache, which stored no hints, is drawn with)."""
    line, signal, hist = names
    return Drawing(
        Plot(panel=line, levels=(0.0,)),
        (
            Line(line, line, color="#1f77b4"),
            Line(signal, signal, color="#ff7f0e"),
            Line(hist, hist, style="histogram"),
        ),
    )
