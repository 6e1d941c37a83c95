"""JupyterLab in a real browser: notebook 00 run through the UI in headless Chromium, no errors, a bokeh plot.

The server listens on 127.0.0.1 with a token and keeps its config, data, runtime, settings and workspaces in the
test's temp folder, so the user's own Jupyter set-up is neither read nor touched. It runs a copy of notebook 00
(quick mode, outputs in the temp folder) so the committed notebook never gets outputs. Chromium and chromedriver
come from the system (`make browser` installs Debian's `chromium` and `chromium-driver`); without them the test
skips and says so. Deselect with `-m "not browser"`.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from eokit.paths import NOTEBOOK_DIR

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(900)]  # each wait below has its own limit

NOTEBOOK = NOTEBOOK_DIR / "00_datasets.ipynb"
SERVER_START_S = 90  # JupyterLab's first start on a busy 2-core machine
RUN_ALL_S = 300  # notebook 00 in quick mode, run cell by cell through the UI
CHROMIUM = ("chromium", "chromium-browser", "google-chrome")
CHROMEDRIVER = ("chromedriver",)
_RUN_ALL = ("runmenu:run-all", "Run All Cells")  # the Run menu's item (JupyterLab 4 command id, English label)
INSTALL_HINT = "run `make browser` (as root on Debian/Ubuntu: apt-get install chromium chromium-driver)"

# Per cell: [number of code cells, prompts with an execution count, whether one is still running `[*]`].
_PROGRESS_JS = r"""
const cells = [...document.querySelectorAll('.jp-Notebook .jp-CodeCell')];
const prompts = cells.map(c => (c.querySelector('.jp-InputPrompt') || {}).textContent || '');
return [cells.length, prompts.filter(p => /\[\d+\]/.test(p)).length, prompts.some(p => p.includes('*'))];
"""
# Per error output: [cell index among the code cells, its text]. IPython tracebacks render as stderr outputs.
_ERRORS_JS = r"""
const cells = [...document.querySelectorAll('.jp-Notebook .jp-CodeCell')];
const out = [];
cells.forEach((c, i) => c.querySelectorAll(
    '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]').forEach(o => {
  const text = o.textContent || '';
  if (/Traceback \(most recent call last\)|^\w*(Error|Exception)\b/m.test(text)) out.push([i, text.slice(0, 2000)]);
}));
return out;
"""
# Bokeh 3 renders each plot into shadow roots under `div.bk-*` elements: count the outputs holding a bokeh view
# with a drawn canvas (non-zero size and at least one non-transparent pixel); return those output elements.
_BOKEH_JS = r"""
function canvases(root) {
  const found = [...root.querySelectorAll('canvas')];
  root.querySelectorAll('*').forEach(el => { if (el.shadowRoot) found.push(...canvases(el.shadowRoot)); });
  return found;
}
function drawn(c) {
  if (!c.width || !c.height) return false;
  try {
    const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    for (let i = 3; i < px.length; i += 4) if (px[i] !== 0) return true;
  } catch (e) { return false; }
  return false;
}
return [...document.querySelectorAll('.jp-OutputArea-output')]
  .filter(o => o.querySelector('[class^="bk-"], [class*=" bk-"]') && canvases(o).some(drawn));
"""


@dataclass
class Lab:
    """A running JupyterLab server: its base URL, token, root folder, log file and process."""

    url: str
    token: str
    root: Path
    log: Path
    process: subprocess.Popen[bytes]

    def api(self, path: str) -> Any:
        """Return the decoded JSON of GET `path` on the server's REST API."""
        req = urllib.request.Request(f"{self.url}{path}", headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.load(r)

    def log_tail(self, n: int = 3000) -> str:
        """Return the last `n` characters of the server log."""
        return self.log.read_text(errors="replace")[-n:] if self.log.exists() else "(no log)"


def _find(names: tuple[str, ...]) -> str | None:
    """Return the first of `names` found on PATH (or in /usr/bin), or None."""
    for name in names:
        found = shutil.which(name) or shutil.which(name, path="/usr/bin:/usr/lib/chromium")
        if found:
            return found
    return None


def _free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(what: str, check: Callable[[], Any], timeout: float, detail: Callable[[], str], every: float = 0.5) -> Any:
    """Return the first truthy `check()`; fail naming `what` (and `detail()`) after `timeout` seconds."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        result = check()
        if result:
            return result
        time.sleep(every)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}\n{detail()}")


def _settings(settings_dir: Path) -> None:
    """Write user settings: every cell in the DOM (no windowing), no news or update checks (no pop-ups)."""
    files = {
        "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
        "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
            "fetchNews": "false",
            "checkForUpdates": False,
        },
    }
    for name, value in files.items():
        (settings_dir / name).parent.mkdir(parents=True, exist_ok=True)
        (settings_dir / name).write_text(json.dumps(value))


def _notebook_copy(root: Path) -> Path:
    """Copy notebook 00 into `root` with papermill-style injected parameters (quick, outputs under `root`)."""
    nb = json.loads(NOTEBOOK.read_text())
    params = f"output = {str(root / 'outputs')!r}\nquick = True\n"
    injected = {
        "cell_type": "code",
        "execution_count": None,
        "id": "injected-parameters",
        "metadata": {"tags": ["injected-parameters"]},
        "outputs": [],
        "source": params.splitlines(keepends=True),
    }
    at = next(i for i, c in enumerate(nb["cells"]) if "parameters" in c["metadata"].get("tags", []))
    nb["cells"].insert(at + 1, injected)
    copy = root / NOTEBOOK.name
    copy.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
    return copy


def _stop(process: subprocess.Popen[bytes], grace: float = 20) -> None:
    """Stop the server by its PID: SIGTERM (it shuts its kernels down), SIGKILL if still alive after `grace` s."""
    if process.poll() is not None:
        return
    os.kill(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    """Start JupyterLab on 127.0.0.1 (free port, token, everything under `tmp_path`); stop it by PID afterwards."""
    root, home = tmp_path / "root", tmp_path / "jupyter"
    dirs = {name: home / name for name in ("config", "data", "runtime", "settings", "workspaces", "ipython", "eo")}
    for d in [root, *dirs.values()]:
        d.mkdir(parents=True)
    _settings(dirs["settings"])
    # The kernel inherits this: no MPLBACKEND (conftest sets Agg), so matplotlib figures show inline as for a user.
    env = {k: v for k, v in os.environ.items() if k not in ("MPLBACKEND", "JUPYTER_PATH")}
    env |= {
        "JUPYTER_CONFIG_DIR": str(dirs["config"]),
        "JUPYTER_DATA_DIR": str(dirs["data"]),
        "JUPYTER_RUNTIME_DIR": str(dirs["runtime"]),
        "JUPYTERLAB_SETTINGS_DIR": str(dirs["settings"]),
        "JUPYTERLAB_WORKSPACES_DIR": str(dirs["workspaces"]),
        "IPYTHONDIR": str(dirs["ipython"]),
        "EOKIT_DATA": str(dirs["eo"]),  # an empty cache: the notebook shows the bundled samples only
    }
    port, token = _free_port(), secrets.token_hex(16)
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
           "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
           "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate", "--LabApp.extension_manager=readonly",
           *(["--allow-root"] if os.geteuid() == 0 else [])]  # fmt: skip
    log = tmp_path / "jupyterlab.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(cmd, cwd=root, env=env, stdout=sink, stderr=subprocess.STDOUT)
    server = Lab(f"http://127.0.0.1:{port}", token, root, log, process)
    try:
        _wait("JupyterLab to answer /api/status", lambda: _ready(server), SERVER_START_S, server.log_tail)
        yield server
    finally:
        _stop(process)


def _ready(server: Lab) -> bool:
    """Return True once the server answers its REST API; fail at once if the process has exited."""
    if server.process.poll() is not None:
        pytest.fail(f"JupyterLab exited with code {server.process.returncode}\n{server.log_tail()}")
    try:
        server.api("/api/status")
    except (urllib.error.URLError, OSError):
        return False
    return True


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    """Headless Chromium driven by chromedriver (both from the system); skip with the reason where absent."""
    chromium, driver_path = _find(CHROMIUM), _find(CHROMEDRIVER)
    if chromium is None or driver_path is None:
        missing = " and ".join(n for n, p in (("chromium", chromium), ("chromedriver", driver_path)) if p is None)
        pytest.skip(f"{missing} not installed, so no real browser can run here: {INSTALL_HINT}")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.fail("selenium is missing: it is in the test extra, `pip install -e '.[test]'` (or `make venv`)")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1400,1000", f"--user-data-dir={tmp_path / 'chromium-profile'}",
                "--no-first-run", "--disable-extensions"):  # fmt: skip
        options.add_argument(arg)
    service = Service(executable_path=driver_path, log_output=str(tmp_path / "chromedriver.log"))
    driver = webdriver.Chrome(options=options, service=service)
    driver.set_page_load_timeout(120)
    try:
        yield driver
    finally:
        driver.quit()


def _is_run_all(item: Any) -> bool:
    """Return True if the menu `item` is Run All Cells (by its command id, or by its label where ids differ)."""
    from selenium.webdriver.common.by import By

    labels = item.find_elements(By.CSS_SELECTOR, ".lm-Menu-itemLabel")
    return item.get_attribute("data-command") == _RUN_ALL[0] or bool(labels and labels[0].text.strip() == _RUN_ALL[1])


def _run_all_from_the_menu(driver: Any) -> None:
    """Click Run > Run All Cells in JupyterLab's menu bar (the item is matched by its command id or its label)."""
    from selenium.webdriver.common.by import By

    menus = driver.find_elements(By.CSS_SELECTOR, ".lm-MenuBar-item")
    run = next((m for m in menus if m.text.strip() == "Run"), None)
    assert run is not None, f"no 'Run' menu in JupyterLab's menu bar (menus: {[m.text for m in menus]})"
    run.click()

    def item() -> list[Any]:
        items = driver.find_elements(By.CSS_SELECTOR, ".lm-Menu .lm-Menu-item")
        return [e for e in items if e.is_displayed() and _is_run_all(e)]

    _wait("the 'Run All Cells' item of the Run menu", item, 10, lambda: "")[0].click()


def _kernel_idle(server: Lab) -> bool:
    """Return True if the notebook's kernel (the server's only session) reports itself idle."""
    sessions = server.api("/api/sessions")
    return bool(sessions) and all(s["kernel"]["execution_state"] == "idle" for s in sessions)


def test_notebook_00_runs_all_cells_in_jupyterlab_and_shows_a_bokeh_plot(browser: Any, lab: Lab, tmp_path: Path):
    from selenium.webdriver.common.by import By

    copy = _notebook_copy(lab.root)
    n_code = sum(c["cell_type"] == "code" for c in json.loads(copy.read_text())["cells"])
    shot = tmp_path / "notebook_00.png"
    started = time.monotonic()
    try:
        browser.get(f"{lab.url}/lab/tree/{copy.name}?token={lab.token}")
        _wait(
            "notebook 00 to open with its kernel idle",
            lambda: browser.find_elements(By.CSS_SELECTOR, ".jp-NotebookPanel .jp-CodeCell") and _kernel_idle(lab),
            SERVER_START_S,
            lab.log_tail,
        )
        cells, _, _ = browser.execute_script(_PROGRESS_JS)
        assert cells == n_code, f"JupyterLab shows {cells} code cells, the notebook has {n_code}"
        _run_all_from_the_menu(browser)

        def finished() -> bool:
            _, counted, running = browser.execute_script(_PROGRESS_JS)
            errored = bool(browser.execute_script(_ERRORS_JS))
            return (counted == n_code or errored) and not running and _kernel_idle(lab)

        def progress() -> str:
            return f"progress [cells, counted, running]: {browser.execute_script(_PROGRESS_JS)}\n{lab.log_tail()}"

        _wait("Run All Cells to finish (kernel idle, every cell numbered)", finished, RUN_ALL_S, progress, every=1)
        errors = browser.execute_script(_ERRORS_JS)
        assert not errors, "error output in notebook 00:\n" + "\n\n".join(f"code cell {i}:\n{t}" for i, t in errors)
        _, counted, _ = browser.execute_script(_PROGRESS_JS)
        assert counted == n_code, f"only {counted} of {n_code} code cells got an execution count"
        plots = _wait("a bokeh plot drawn on a canvas", lambda: browser.execute_script(_BOKEH_JS), 60, progress)
        browser.execute_script("arguments[0].scrollIntoView({block: 'center'});", plots[0])
        time.sleep(0.5)  # let the scrolled view repaint before the screenshot
    finally:
        browser.save_screenshot(str(shot))
        print(f"screenshot: {shot}; {time.monotonic() - started:.0f} s in the browser")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
