"""Widget factories for the notebooks: knob controls and a measure-and-plot explorer.

Notebooks only wire these together. A control change never measures by itself (a measurement
takes seconds); the "Measure" button applies the recipe to a copy of the baseline, measures it,
and redraws the figure with the new point.
"""
from __future__ import annotations

import ipywidgets as W
from IPython.display import display

from .plots import knob_figure
from .prune import METHODS as PRUNE_METHODS
from .prune.base import PATTERNS
from .quant import METHODS as QUANT_METHODS
from .quant.base import ACTIVATIONS, BITS, GROUP_SIZES
from .recipe import Recipe, RecipeError

_STYLE = {"description_width": "110px"}


def prune_controls(method: str = "wanda", ratio: float = 0.5) -> dict[str, W.Widget]:
    """Pruning method, ratio and pattern."""
    return {
        "method": W.Dropdown(options=list(PRUNE_METHODS), value=method, description="method", style=_STYLE),
        "ratio": W.FloatSlider(value=ratio, min=0.0, max=0.9, step=0.05, description="ratio",
                               continuous_update=False, readout_format=".2f", style=_STYLE),
        "pattern": W.ToggleButtons(options=list(PATTERNS), value="unstructured", description="pattern",
                                   style=_STYLE),
    }


def quant_controls(method: str = "rtn", bits: int = 4) -> dict[str, W.Widget]:
    """Quantization method, bits, group size, symmetry and activations."""
    return {
        "method": W.Dropdown(options=list(QUANT_METHODS), value=method, description="method", style=_STYLE),
        "bits": W.Dropdown(options=list(BITS), value=bits, description="bits", style=_STYLE),
        "group_size": W.Dropdown(options=[("per channel", 0)] + [(str(g), g) for g in GROUP_SIZES if g],
                                 value=32, description="group size", style=_STYLE),
        "symmetric": W.Checkbox(value=True, description="symmetric", style=_STYLE),
        "activations": W.Dropdown(options=list(ACTIVATIONS), value="none", description="activations",
                                  style=_STYLE),
    }


def section_from(controls: dict[str, W.Widget]) -> dict:
    """The recipe section the controls describe (only keys the chosen method accepts)."""
    body = {k: w.value for k, w in controls.items()}
    if body.get("method") in ("heads", "channels"):  # structured pruning has no sparsity pattern
        body.pop("pattern", None)
    return body


def knob_explorer(meter, section: str, x_key: str, baseline, points: list, controls=None) -> W.VBox:
    """Controls for one knob, a Measure button, and the 2x2 trade-off figure that gains each point.

    Args:
        meter: a workbench.measure.point.PointMeter bound to the baseline and steps.
        section: "prune" or "quant".
        x_key: the knob on the x axis, e.g. "ratio" or "bits".
        baseline: the baseline Point.
        points: list of Points already measured (appended to in place).
        controls: the control dict (default: prune_controls() or quant_controls()).
    Returns:
        The widget box (display it).
    """
    controls = controls or (prune_controls() if section == "prune" else quant_controls())
    button = W.Button(description="Measure", button_style="primary", icon="play")
    status = W.HTML()
    plot = W.Output()

    def redraw():
        plot.clear_output(wait=True)
        with plot:
            display(knob_figure(points, (section, x_key), baseline))

    def on_click(_):
        try:
            recipe = Recipe.from_json({section: section_from(controls)})
        except RecipeError as e:
            status.value = f"<span style='color:#c00'>{e}</span>"
            return
        button.disabled = True
        status.value = "measuring ..."
        try:
            point = meter(recipe)
        except (ValueError, RuntimeError) as e:
            status.value = f"<span style='color:#c00'>{type(e).__name__}: {e}</span>"
            return
        finally:
            button.disabled = False
        points.append(point)
        status.value = (f"{point.label}: step accuracy {point.step:.3f}, KL {point.kl:.4f}, "
                        f"decode {point.decode_ms.median:.2f} ms/token, "
                        f"{point.weight_bytes / 2**20:.2f} MiB ({point.seconds:.0f} s)")
        redraw()

    button.on_click(on_click)
    redraw()
    box = W.VBox([W.HBox([W.VBox(list(controls.values())), W.VBox([button, status])]), plot])
    box.measure = lambda: on_click(None)  # for scripted use and tests
    box.controls, box.status = controls, status
    return box
