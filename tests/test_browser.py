"""The trade-off explorer (notebook 05) in a real browser: JupyterLab on a loopback port, headless Chromium.

A fresh JupyterLab server per module (own config, data, runtime, workspace and settings folders, token
authentication, an empty results store in a temporary file) serves a copy of the notebook; Playwright for
Python drives Debian's `chromium` (no browser download), runs all cells, moves the pruning-ratio slider one
step and checks that the kernel measured a new point: the trade-off plot gains a marker and the readout
names the new point. `make test` installs chromium with apt where it can; without it the test skips.
"""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = "notebooks/05_tradeoff_explorer.ipynb"
SERVER_START_S = 120        # JupyterLab answering /api/status
RUN_ALL_S = 900             # every cell executed (9 points on 48 steps and the glm-edge-1.5b target: 3-5 min on 2 cores)
POINT_S = 180               # one new point measured after a slider step
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]

PANEL = ".jp-NotebookPanel:not(.lm-mod-hidden)"
# the readout of the dashboard's status row: the HTML widget beside the progress bar and the Cancel button
READOUT = (f"{PANEL} .jp-OutputArea .widget-hbox:has(> .widget-hprogress):has(> .widget-button)"
           " > .widget-html .widget-html-content")
READOUT_TEXT = f"() => document.querySelector({json.dumps(READOUT)})?.textContent ?? null"
# the pruning-ratio slider of the first (visible) tab
RATIO = f"{PANEL} .widget-slider:has(> .widget-label:text-is('ratio'))"
RATIO_HANDLE, RATIO_VALUE = f"{RATIO} .noUi-handle", f"{RATIO} .widget-readout"   # aria-valuenow has 1 decimal

# JS: markers on the trade-off plot (the FigureWidget whose title says "trade-off"; the knob view is another plot)
COUNT_MARKERS = """(panel) => {
    const root = document.querySelector(panel);
    if (!root) return -1;
    const plots = [...root.querySelectorAll('.js-plotly-plot')]
        .filter(p => (p.querySelector('.gtitle')?.textContent || '').includes('trade-off'));
    if (plots.length !== 1) return -plots.length - 2;
    return plots[0].querySelectorAll('.scatterlayer .point').length;
}"""

# JS: the state of the run: code cells, how many executed, how many still running, the first error output
RUN_STATE = """(panel) => {
    const root = document.querySelector(panel);
    const widget = window.jupyterapp && window.jupyterapp.shell.currentWidget;
    if (!root || !widget || !widget.content || !widget.content.model) return null;
    const prompts = [...root.querySelectorAll('.jp-CodeCell .jp-InputArea-prompt')].map(p => p.textContent.trim());
    let error = null;
    const cells = widget.content.model.cells;
    for (let i = 0; i < cells.length && !error; i++) {
        const cell = cells.get(i);
        if (cell.type !== 'code') continue;
        const e = cell.outputs.toJSON().find(o => o.output_type === 'error');
        if (e) error = `cell ${i}: ${e.ename}: ${e.evalue}`;
    }
    return {cells: prompts.length, done: prompts.filter(p => /^\\[\\d+\\]:$/.test(p)).length,
            running: prompts.filter(p => p === '[*]:').length, prompts, error};
}"""

# user settings for the fresh server: no news prompt, no autosave (the notebook is a copy anyway)
SETTINGS = {"@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false"},
            "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False}}


def _chromium() -> str | None:
    return shutil.which("chromium") or ("/usr/bin/chromium" if os.access("/usr/bin/chromium", os.X_OK) else None)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tail(path: Path, n: int = 4000) -> str:
    try:
        return path.read_text(errors="replace")[-n:]
    except OSError:
        return "(no log)"


@pytest.fixture(scope="module")
def chromium():
    """The chromium executable and Playwright's sync API; skips (before any server starts) without them."""
    path = _chromium()
    if path is None:
        pytest.skip("chromium is not installed and could not be installed (Debian: `apt-get install chromium`, which "
                    "`make test` tries); the real-browser test needs it")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright (python) is not installed: "
                                   "pip install -e '.[dev]'")
    return path, sync_api


@pytest.fixture(scope="module")
def lab(chromium, tmp_path_factory):
    """A JupyterLab server on a free 127.0.0.1 port serving a copy of notebook 05: (base url, token, log)."""
    base = tmp_path_factory.mktemp("jupyterlab")
    dirs = {name: base / name for name in ("config", "data", "runtime", "workspaces", "settings", "ipython", "root")}
    for d in dirs.values():
        d.mkdir()
    for name, value in SETTINGS.items():
        (dirs["settings"] / name).parent.mkdir(parents=True, exist_ok=True)
        (dirs["settings"] / name).write_text(json.dumps(value))
    # a copy, so that JupyterLab's autosave never writes outputs into the repository's notebook
    (dirs["root"] / "notebooks").mkdir()
    shutil.copy(ROOT / NOTEBOOK, dirs["root"] / NOTEBOOK)
    port, token = _free_port(), os.urandom(16).hex()
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(dirs["config"]), JUPYTER_DATA_DIR=str(dirs["data"]),
               JUPYTER_RUNTIME_DIR=str(dirs["runtime"]), IPYTHONDIR=str(dirs["ipython"]),
               AUTOGLM_WORKBENCH_STORE=str(base / "results.db"),   # empty: the new point must be measured
               JUPYTER_PLATFORM_DIRS="1", PYTHONUNBUFFERED="1")
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}", "--port-retries=0",
           f"--ServerApp.token={token}", f"--ServerApp.root_dir={dirs['root']}",
           "--LabApp.news_url=None", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
           f"--LabApp.workspaces_dir={dirs['workspaces']}", f"--LabApp.user_settings_dir={dirs['settings']}",
           "--LabApp.expose_app_in_browser=True"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")
    log_path = base / "server.log"
    log = open(log_path, "wb")
    proc = subprocess.Popen(cmd, cwd=dirs["root"], env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)

    def stop():
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)   # the server and the kernels it started
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
            except ProcessLookupError:
                pass
        log.close()

    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + SERVER_START_S
        while True:
            if proc.poll() is not None:
                pytest.fail(f"JupyterLab exited with code {proc.returncode} before answering; log:\n{_tail(log_path)}")
            try:
                with urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=5) as r:
                    json.load(r)
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"JupyterLab did not answer on {url} within {SERVER_START_S} s; log:\n"
                                f"{_tail(log_path)}")
                time.sleep(0.5)
        yield url, token, log_path
    finally:
        stop()


@pytest.fixture
def page(chromium, lab):
    """A headless Chromium page; console errors and page errors are collected in `page.errors`."""
    executable, sync_api = chromium
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        try:
            pg = browser.new_page(viewport={"width": 1400, "height": 1200})
            pg.errors = []
            pg.on("console", lambda m: pg.errors.append(f"console.{m.type}: {m.text}") if m.type == "error" else None)
            pg.on("pageerror", lambda e: pg.errors.append(f"pageerror: {e}"))
            yield pg
        finally:
            browser.close()


def _wait(page, js, arg, ok, timeout_s, what, lab_log=None):
    """Poll `js(arg)` in the page until `ok(value)`; fail naming `what`, the last value and the console errors."""
    deadline = time.monotonic() + timeout_s
    value = None
    while time.monotonic() < deadline:
        value = page.evaluate(js, arg)
        if ok(value):
            return value
        page.wait_for_timeout(250)
    errors = "\n".join(page.errors[-20:]) or "(none)"
    dump = getattr(page, "debug_dir", None)
    if dump is not None:   # what the page looked like, for the failure report
        page.screenshot(path=str(dump / "timeout.png"))
        html = page.evaluate("(sel) => document.querySelector(sel)?.outerHTML || ''", PANEL)
        (dump / "timeout_panel.html").write_text(html)
        errors += f"\n(screenshot and panel HTML saved in {dump})"
    log = f"\nserver log tail:\n{_tail(lab_log, 3000)}" if lab_log else ""
    pytest.fail(f"timed out after {timeout_s} s waiting for {what}; last value: {value!r}\n"
                f"browser console errors:\n{errors}{log}")


@pytest.mark.slow
def test_slider_step_adds_a_measured_point(lab, page, tmp_path):
    url, token, log_path = lab
    page.debug_dir = tmp_path
    t0 = time.monotonic()
    page.goto(f"{url}/lab/tree/{NOTEBOOK}?reset&token={token}", timeout=120_000)
    page.wait_for_selector(f"{PANEL} .jp-Notebook .jp-Cell", timeout=120_000)
    # the kernel is up (the status bar or the toolbar shows it idle) before running everything
    _wait(page, """() => { const a = window.jupyterapp; const w = a && a.shell.currentWidget;
                           const k = w && w.sessionContext && w.sessionContext.session
                                     && w.sessionContext.session.kernel;
                           return k ? k.status : null; }""", None, lambda s: s == "idle", 120,
          "the notebook's kernel to start (window.jupyterapp: --LabApp.expose_app_in_browser)", log_path)
    page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")

    state = _wait(page, RUN_STATE, PANEL,
                  lambda s: s is not None and (s["error"] or (s["cells"] > 0 and s["done"] == s["cells"])),
                  RUN_ALL_S, "every cell of the notebook to run", log_path)
    assert not state["error"], f"a cell failed:\n{state['error']}"
    t_run = time.monotonic() - t0

    # the dashboard shows the point the last scripted cell left it on
    old_readout = _wait(page, READOUT_TEXT, None,
                        lambda t: t is not None and t.startswith("magnitude 0.2 unstructured: step accuracy"), 60,
                        f"the readout ({READOUT}) to show the notebook's last point 'magnitude 0.2 unstructured'",
                        log_path)
    before = _wait(page, COUNT_MARKERS, PANEL, lambda n: n > 0, 60, "markers on the trade-off plot", log_path)
    # as a user would, scroll back up to the dashboard: JupyterLab renders only the cells near the view, so after
    # "run all" the controls of a cell far above the last one have no rendered text
    page.locator(READOUT).evaluate("e => e.closest('.jp-OutputArea-output').scrollIntoView({block: 'start'})")
    handle = page.locator(RATIO_HANDLE)
    assert handle.count() == 1, f"expected one pruning-ratio slider handle ({RATIO_HANDLE}), found {handle.count()}"
    value = page.locator(RATIO_VALUE)
    assert value.inner_text().strip() == "0.20", f"the ratio slider shows {value.inner_text()!r}, not 0.20"

    # one step right (0.20 -> 0.25); continuous_update=False: the value goes to the kernel on the key press
    handle.focus()
    page.keyboard.press("ArrowRight")
    t1 = time.monotonic()
    new_readout = _wait(page, READOUT_TEXT, None,
                        lambda t: bool(t) and t != old_readout and "step accuracy" in t,
                        POINT_S, "the readout to show a newly measured point after ArrowRight on the ratio slider",
                        log_path)
    after = _wait(page, COUNT_MARKERS, PANEL, lambda n: n > before, 30,
                  f"the trade-off plot to gain a marker (had {before})", log_path)
    t_point = time.monotonic() - t1

    shot = tmp_path / "tradeoff_explorer.png"
    # the notebook scrolls inside the page: bring the dashboard (knobs, readout, plot) to the top of the view
    page.locator(READOUT).evaluate("e => e.closest('.jp-OutputArea-output').scrollIntoView({block: 'start'})")
    page.screenshot(path=str(shot))
    print(f"\nscreenshot: {shot}\nrun all cells {t_run:.1f} s, new point {t_point:.1f} s; "
          f"markers {before} -> {after}; readout: {new_readout}\n"
          f"browser console errors: {len(page.errors)}" + "".join(f"\n  {e}" for e in page.errors[:20]))

    assert re.match(r"magnitude 0\.25\d* unstructured: step accuracy [\d.]+ \(n=48\)", new_readout), new_readout
    assert "measured" in new_readout and "from the store" not in new_readout, new_readout
    assert after == before + 1, (before, after)
    assert value.inner_text().strip() == "0.25", f"the ratio slider shows {value.inner_text()!r} after one step"
