"""Drawn once, then pasted: rendered text and legends kept as images for matplotlib's Agg
renderer, so that a move of the chart does not rasterise them again.

Agg rasterises every glyph of every text each time it is drawn; with matplotlib 3.11's text
layout that is ~2 ms for a tick label like ``302.5`` and ~15 ms for the chart's window title,
a third of a move (benchmarks/bench_visualizer.py). Most texts of a move are the same
as in the move before: tick labels at round prices, the dates under the panels, the legends.
:class:`TextBitmaps` keeps each rendered text as a small RGBA image and draws it again with
one ``draw_image`` call, for the Agg renderer it is installed on (the window's; ``--export``
files are drawn without it).

A text is rendered into an image of its own with the same font, colour, alpha and
antialiasing, and pasted at whole pixels, as matplotlib placed text before 3.11 (a tick
label moves with its tick in fractions of a pixel: keeping those apart would miss the cache
on almost every move). Some texts are new on every move (the window's dates above the
candles), so a new text is rasterised by FreeType in one call (``FT2Font``'s string bitmap,
how matplotlib drew text before 3.11): ~5 times faster than 3.11's Python loop over the
glyphs, with the same pixels but where two glyphs touch (FreeType and matplotlib combine
those one or two pixels differently). A text needing a fallback font is drawn by matplotlib.

:func:`paste_unchanged` does the same for a whole artist that only changes with the layout,
such as a panel's legend (its box layout alone costs ~7 ms a draw).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable, Hashable

import numpy as np
from matplotlib.backends.backend_agg import RendererAgg, get_hinting_flag
from matplotlib.font_manager import FontProperties, findfont, get_font

__all__ = ["TextBitmaps", "paste_unchanged"]

#: Room around a text's nominal box for glyphs that reach beyond it (italic overhangs, "j").
_PAD = 6
#: Cached for a text that does not fit the room it is rendered in: always drawn directly.
_DIRECT = ()


def _font_key(prop: FontProperties) -> tuple:
    # FontProperties is mutable; its values, not the object, identify the font.
    return (
        tuple(prop.get_family()),
        prop.get_style(),
        prop.get_variant(),
        prop.get_weight(),
        prop.get_stretch(),
        prop.get_size_in_points(),
        prop.get_file(),
        prop.get_math_fontfamily(),
    )


class TextBitmaps:
    """Rendered texts by content, font, colour and resolution (the least recently used are
    dropped beyond ``limit``). One instance serves any number of renderers."""

    def __init__(self, limit: int = 4000) -> None:
        self.limit = limit
        # (image, left, top); None for a blank text, _DIRECT for one never pasted.
        self._images: OrderedDict[tuple, tuple | None] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def install(self, renderer) -> None:
        """Make ``renderer`` (a RendererAgg) draw plain text through this cache. Idempotent;
        other renderers are left alone."""
        if not isinstance(renderer, RendererAgg) or renderer.__dict__.get("_text_bitmaps") is self:
            return
        direct = type(renderer).draw_text.__get__(renderer)

        def draw_text(gc, x, y, s, prop, angle, ismath=False, mtext=None):
            if not self._paste(renderer, gc, x, y, s, prop, angle, ismath, mtext):
                direct(gc, x, y, s, prop, angle, ismath=ismath, mtext=mtext)

        renderer.draw_text = draw_text  # an instance attribute shadows the class's method
        renderer._text_bitmaps = self

    def _paste(self, renderer, gc, x, y, s, prop, angle, ismath, mtext) -> bool:
        """Draw ``s`` from the cache (rendering it first if new); False if it is a kind of
        text the cache does not handle (maths, rotation, OpenType features)."""
        if ismath or angle % 360 or not (np.isfinite(x) and np.isfinite(y)):
            return False
        if mtext is not None and any(
            getattr(mtext, name, lambda: None)() for name in ("get_fontfeatures", "get_language")
        ):
            return False
        ix, iy = round(x), round(y)  # y counts down from the top, as Agg's text
        key = (
            s,
            _font_key(prop),
            tuple(gc.get_rgb()),
            gc.get_alpha(),
            gc.get_forced_alpha(),
            gc.get_antialiased(),
            renderer.dpi,
        )
        found = self._images.get(key, False)
        if found is False:
            self.misses += 1
            found = self._render(renderer, gc, s, prop)
            self._images[key] = found
            if len(self._images) > self.limit:
                self._images.popitem(last=False)
        else:
            self.hits += 1
            self._images.move_to_end(key)
        if found is None:  # nothing visible (blank text)
            return True
        if found is _DIRECT:
            return False
        image, left, top = found
        paste = renderer.new_gc()
        paste.copy_properties(gc)  # the clip rectangle and path of the text
        paste.set_alpha(None)  # the image carries the text's alpha already
        # draw_image takes the image's lower left corner, counted up from the bottom.
        renderer.draw_image(paste, ix + left, renderer.height - (iy + top + image.shape[0]), image)
        paste.restore()
        return True

    @staticmethod
    def _render(renderer, gc, s: str, prop: FontProperties):
        """(image, left, top): ``s`` drawn at a whole-pixel position, cropped to its pixels;
        left/top are the crop's offset from that position."""
        if gc.get_antialiased():
            found = _rasterise(s, prop, renderer.dpi)
            if found is not None:
                coverage, left, top = found
                return _colour(coverage, gc.get_rgb(), left, top)
        # Room for an em per character around the baseline (measuring the text first would
        # cost as much as drawing it); a text reaching the edge is not cached.
        em = prop.get_size_in_points() * renderer.dpi / 72
        width, height = math.ceil(em * len(s)) + 4 * _PAD, math.ceil(3 * em) + 2 * _PAD
        scratch = RendererAgg(width, height, renderer.dpi)
        pen = scratch.new_gc()
        pen.copy_properties(gc)
        pen.set_clip_rectangle(None)
        pen.set_clip_path(None)
        origin_x, origin_y = 2 * _PAD, height // 2
        type(scratch).draw_text(scratch, pen, origin_x, origin_y, s, prop, 0)
        pen.restore()
        pixels = np.asarray(scratch.buffer_rgba())
        alpha = pixels[..., 3]
        rows, cols = np.flatnonzero(alpha.any(axis=1)), np.flatnonzero(alpha.any(axis=0))
        if len(rows) == 0:
            return None
        top, bottom, left, right = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
        if top == 0 or left == 0 or bottom == height or right == width:
            return _DIRECT  # reaches the edge of the room: maybe cut, so never pasted
        # draw_image's rows run bottom to top.
        image = np.ascontiguousarray(pixels[top:bottom, left:right][::-1])
        return image, int(left - origin_x), int(top - origin_y)


def _rasterise(s: str, prop: FontProperties, dpi: float):
    """(coverage, left, top): ``s`` rasterised by FreeType in one call, and where the
    coverage image's top left pixel lies from the pen's origin on the baseline; None for a
    text with characters its font lacks (matplotlib then finds fallback fonts)."""
    font = get_font(findfont(prop))
    if not all(font.get_char_index(ord(c)) for c in s):
        return None
    font.clear()
    font.set_size(prop.get_size_in_points(), dpi)
    # A leading space: FreeType's bitmap of a string puts its first glyph a pixel off when
    # that glyph starts left of the pen's origin or between pixels (an overhanging "T");
    # after an empty glyph at the origin every glyph lands where matplotlib draws it (with
    # hinting, advances are whole pixels; else the text moves by less than half a pixel).
    pen = font.set_text(" " + s, 0.0, flags=get_hinting_flag())[1, 0] / 64
    font.draw_glyphs_to_bitmap(antialiased=True)
    coverage = np.asarray(font.get_image())
    left = font.get_bitmap_offset()[0] / 64
    descent = font.get_descent() / 64
    return coverage, round(left - pen), round(descent) + 1 - coverage.shape[0]


def _colour(coverage: np.ndarray, rgba, left: int, top: int):
    """The cached form of a coverage image in colour ``rgba`` (alpha included): cropped to
    its ink, rows bottom to top as draw_image takes them; None if there is no ink."""
    rows, cols = np.flatnonzero(coverage.any(axis=1)), np.flatnonzero(coverage.any(axis=0))
    if len(rows) == 0:
        return None
    coverage = coverage[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    image = np.empty((*coverage.shape, 4), np.uint8)
    image[..., :3] = np.round(np.asarray(rgba[:3]) * 255)
    image[..., 3] = np.round(coverage * rgba[3])
    return np.ascontiguousarray(image[::-1]), left + int(cols[0]), top + int(rows[0])


def paste_unchanged(artist, layout: Callable[[], Hashable]) -> None:
    """Draw ``artist`` (a legend) once per ``layout()`` value and canvas size, and paste
    that image on later draws. Only for an artist whose look depends on nothing else;
    renderers other than Agg draw it as usual."""
    direct = type(artist).draw
    kept: dict = {}

    def draw(renderer) -> None:
        if not isinstance(renderer, RendererAgg) or not artist.get_visible():
            direct(artist, renderer)
            return
        key = (renderer.width, renderer.height, renderer.dpi, layout())
        if kept.get("key") != key:
            kept.clear()
            kept["key"] = key
            scratch = RendererAgg(renderer.width, renderer.height, renderer.dpi)
            direct(artist, scratch)
            box = artist.get_window_extent(scratch)
            height = int(scratch.height)
            x0, x1 = max(0, math.floor(box.x0) - 2), min(int(scratch.width), math.ceil(box.x1) + 2)
            y0, y1 = max(0, math.floor(box.y0) - 2), min(height, math.ceil(box.y1) + 2)
            if x1 > x0 and y1 > y0:
                pixels = np.asarray(scratch.buffer_rgba())[height - y1 : height - y0, x0:x1]
                kept["image"] = (np.ascontiguousarray(pixels[::-1]), x0, y0)
        if "image" in kept:
            image, x0, y0 = kept["image"]
            gc = renderer.new_gc()
            renderer.draw_image(gc, x0, y0, image)
            gc.restore()
        artist.stale = False

    artist.draw = draw  # an instance attribute shadows the class's method
