"""Deterministic phone screenshots drawn from an accessibility tree (Pillow only, no torch).

The real Open-AutoGLM agent shows its vision-language model a screenshot per step. Our episodes
record the accessibility tree, so this package paints a plausible Android screen from it: status
bar (clock, Wi-Fi and battery icons), top app bar, list rows, filled pill buttons, outlined text
fields with hint text, switches, icons for content-description-only nodes, images and maps as
shapes, the on-screen keyboard, scrollbars of scrollable lists and the three-button navigation
bar. Text is set in the FreeType font that ships with Pillow (``ImageFont.load_default(size)``)
and ellipsized to its node's box, so a vision model can read every element's label where the tree
puts it.

Node bounds are 0..999 in both axes; the node [x1, y1, x2, y2] covers the pixels from
x1 * W / 1000 to (x2 + 1) * W / 1000 (so 999 reaches the right and bottom edge), which maps an
action's element [x, y] to the pixel (x * W / 1000, y * H / 1000) as Open-AutoGLM does.

Drawing happens in two passes over the tree, each in tree order: backgrounds first (page,
status bar, app bar, navigation bar, dividers, scrollbars), then content. Layout containers
(FrameLayout, LinearLayout, ViewGroup, ConstraintLayout, RecyclerView) paint no fill, so a
full-screen container never hides what it contains.

The same tree gives the same PNG bytes: no randomness (colours come from sha256 of names), no
timestamps or text chunks in the file, fixed zlib settings and a fixed palette quantization. The
screen is 360 x 800 px by default (a 1080 x 2400 phone at 1/3, so 1 px = 1 dp at its 3x density);
the file is a 256-colour palette PNG, typically 4-6 KB.

The parts:
    canvas.py   theme and colours, the canvas and its 0..999 -> pixel mapping, fonts, text fitting
                and drawing, node-kind predicates
    widgets.py  painters of text rows, buttons, text fields, switches, check boxes, launcher icons,
                the keyboard, the camera preview and progress spinners
    glyphs.py   painters of images, maps, photos, icon buttons and the small glyphs (search,
                battery, Wi-Fi)
    screen.py   the background and content passes, render_screen / render_png, file names and
                writing (write_png, write_screenshots)
"""
from .canvas import SCREEN_SIZE
from .screen import PALETTE_COLORS, render_png, render_screen, screenshot_name, write_png, write_screenshots

__all__ = ["PALETTE_COLORS", "SCREEN_SIZE", "render_png", "render_screen", "screenshot_name", "write_png",
           "write_screenshots"]
