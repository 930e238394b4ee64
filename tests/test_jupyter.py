"""Editing in JupyterLab as a person does: `make lab` on a free loopback port, driven in Debian's headless
Chromium by Playwright (never `playwright install`). Every numbered notebook is opened, run top to bottom from
the Run menu and saved with Ctrl+S; no cell may end in an error. Afterwards the notebooks are byte for byte
what they were (the save hook cleaned them), `tools/check_notebooks.py` passes (clean notebooks, the library
equals their export), and no model or report was written to any artifacts directory. Screenshots and the
timings (from `make lab` to a usable notebook, and per notebook) go to artifacts/jupyter/."""
import json, os, secrets, shutil, signal, subprocess, sys, time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from conftest import ROOT, free_port

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(1800)]
OUT = ROOT/"artifacts"/"jupyter"
NOTEBOOKS = sorted(p.name for p in (ROOT/"nbs").glob("[0-9][0-9]_*.ipynb"))
TOKEN = secrets.token_hex(16)
# What the test adds to `make lab`: no browser of the server's own, a known token, its port or none, the app
# object in the page (to read cell outputs), and nothing fetched from outside (news, update checks, PyPI).
LAB_ARGS = [f"--IdentityProvider.token={TOKEN}", "--no-browser", "--ServerApp.port_retries=0",
            "--expose-app-in-browser", "--LabApp.news_url=None",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            "--LabApp.extension_manager=readonly"] + (["--allow-root"] if os.geteuid() == 0 else [])
NOTEBOOK_STATE = """() => {
    const panel = window.jupyterapp?.shell.currentWidget;
    if (!panel?.content?.model || !panel.sessionContext?.session?.kernel) return null;
    const all = panel.content.model.toJSON().cells, cells = all.filter(c => c.cell_type === 'code');
    const outputs = cells.flatMap(c => c.outputs), image = o => o.data?.['image/png'];
    return {kernel: panel.sessionContext.session.kernel.status, dirty: panel.context.model.dirty, code: cells.length,
            executed: cells.filter(c => c.execution_count !== null).length,
            errors: outputs.filter(o => o.output_type === 'error').map(o => `${o.ename}: ${o.evalue}`),
            images: outputs.filter(image).length, first_image: all.findIndex(c => c.outputs?.some(image))};
}"""

def api(base:str, path:str, method:str="GET"):
    "Call the Jupyter server's REST API; the parsed answer, or None when it has no body"
    r = requests.request(method, f"{base}/api/{path}", headers={"Authorization": f"token {TOKEN}"}, timeout=10)
    r.raise_for_status()
    return r.json() if r.content else None

def artifact_files()->dict[str, tuple[int, int]]:
    "Size and modification time of every file in every `artifacts` directory of the checkout, but this test's own"
    dirs = [p for p in ROOT.rglob("artifacts")
            if p.is_dir() and not {".venv", ".git", ".tools"} & set(p.relative_to(ROOT).parts)]
    return {str(f.relative_to(ROOT)): (f.stat().st_size, f.stat().st_mtime_ns)
            for d in dirs for f in d.rglob("*") if f.is_file() and OUT not in f.parents}

@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    "`make lab` on a free loopback port, with a Jupyter home of its own; yields its base URL and start time"
    home, port = tmp_path_factory.mktemp("jupyter-home"), free_port()
    # Jupyter's per-user settings, state and kernels' runtime files go to a scratch home, so neither the
    # person's own Jupyter set-up (a save hook of their own, say) nor this run can change the other's.
    env = {k: v for k, v in os.environ.items() if k not in ("IRIS_ARTIFACTS_DIR", "IRIS_MODEL_DIR")}
    env.update({k: str(home/k.lower()) for k in ["JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR",
                                                  "JUPYTERLAB_SETTINGS_DIR", "JUPYTERLAB_WORKSPACES_DIR"]})
    news = home/"jupyterlab_settings_dir"/"@jupyterlab"/"apputils-extension"
    news.mkdir(parents=True)
    # no question about news over the notebook
    (news/"notification.jupyterlab-settings").write_text('{"fetchNews": "false"}')
    log = (home/"lab.log").open("w")
    started = time.monotonic()
    proc = subprocess.Popen(["make", "--no-print-directory", "lab", f"LAB_PORT={port}",
                             f"LAB_ARGS={' '.join(LAB_ARGS)}"],
                            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        while True:
            if proc.poll() is not None:
                pytest.fail(f"make lab exited with {proc.returncode}:\n{(home/'lab.log').read_text()[-3000:]}")
            if time.monotonic() - started > 240:
                pytest.fail(f"make lab did not answer within 240 s:\n{(home/'lab.log').read_text()[-3000:]}")
            try:
                api(base, "status")
                break
            except OSError: time.sleep(0.5)
        yield base, started
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # make, the server and its kernels: the session this test started
        try: proc.wait(timeout=30)
        except subprocess.TimeoutExpired: os.killpg(proc.pid, signal.SIGKILL)
        log.close()

def wait_for(page, check, seconds:float, what:str):
    "Poll the notebook's state until `check(state)` holds; the last state"
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        state = page.evaluate(NOTEBOOK_STATE)
        if state and check(state): return state
        time.sleep(0.5)
    pytest.fail(f"{what}: not done within {seconds:.0f} s (last state: {state})")

def run_and_save(page, base:str, name:str)->dict:
    "Open notebook `name`, run all its cells from the Run menu, screenshot it and save it; what was seen"
    t = time.monotonic()
    page.goto(f"{base}/lab/tree/{name}?reset")  # `reset`: a fresh workspace, only this notebook open
    wait_for(page, lambda s: s["kernel"] == "idle", 180, f"{name} opening")
    usable = time.monotonic()
    page.get_by_role("menuitem", name="Run", exact=True).click()
    page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
    # JupyterLab stops at the first error, so the run is over once the kernel is idle and every cell has run, or
    # one failed.
    state = wait_for(page, lambda s: s["kernel"] == "idle" and (s["executed"] == s["code"] or s["errors"]), 420,
                     f"{name} running")
    if state["images"]:  # show the first picture: JupyterLab draws only the cells in view
        page.evaluate("i => window.jupyterapp.shell.currentWidget.content.scrollToItem(i, 'start')",
                      state["first_image"])
        page.locator(".jp-RenderedImage img").first.wait_for(state="visible", timeout=30_000)
    page.screenshot(path=str(OUT/f"{Path(name).stem}.png"))
    written = (ROOT/"nbs"/name).stat().st_mtime_ns
    page.keyboard.press("Control+s")
    wait_for(page, lambda s: not s["dirty"], 60, f"{name} saving")
    # so "unchanged" below means "cleaned"
    assert (ROOT/"nbs"/name).stat().st_mtime_ns != written, f"{name}: saving wrote nothing"
    for session in api(base, "sessions"): api(base, f"sessions/{session['id']}", "DELETE")  # stop its kernel
    return dict(state, usable_at=usable, open_s=round(usable - t, 1), total_s=round(time.monotonic() - t, 1))

def test_every_notebook_runs_and_saves_clean_in_jupyterlab(lab, browser):
    OUT.mkdir(parents=True, exist_ok=True)
    originals = {n: (ROOT/"nbs"/n).read_bytes() for n in NOTEBOOKS}
    leftovers = [p for p in [ROOT/"nbs"/".ipynb_checkpoints", ROOT/"nbs"/".last_checked"] if not p.exists()]
    artifacts = artifact_files()
    base, started = lab
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page, outside = context.new_page(), []
    def route(r):
        if urlsplit(r.request.url).hostname in ("127.0.0.1", "localhost"): return r.continue_()
        outside.append(r.request.url)
        r.abort()
    page.route("**/*", route)
    page.goto(f"{base}/lab?token={TOKEN}")  # logs in: the token becomes a cookie
    try:
        runs = {name: run_and_save(page, base, name) for name in NOTEBOOKS}
        changed = [n for n in NOTEBOOKS if (ROOT/"nbs"/n).read_bytes() != originals[n]]
    finally:
        for n, data in originals.items():  # whatever happened, the notebooks are left as they were found
            if (ROOT/"nbs"/n).read_bytes() != data: (ROOT/"nbs"/n).write_bytes(data)
        for p in leftovers: shutil.rmtree(p) if p.is_dir() else p.unlink(missing_ok=True)
        context.close()
    timings = dict(make_lab_to_usable_notebook_s=round(runs[NOTEBOOKS[0]]["usable_at"] - started, 1),
                   total_s=round(time.monotonic() - started, 1),
                   notebooks={n: {k: r[k] for k in ["open_s", "total_s"]} for n, r in runs.items()})
    (OUT/"timings.json").write_text(json.dumps(timings, indent=2))
    assert {n: r["errors"] for n, r in runs.items() if r["errors"]} == {}
    assert all(r["executed"] == r["code"] for r in runs.values()), runs
    # the data pictures
    assert runs["01_data_processing.ipynb"]["images"] >= 1 and runs["02_pipeline.ipynb"]["images"] >= 1
    assert changed == [], "saving from JupyterLab changed these notebooks: the save hook did not clean them"
    check = subprocess.run([sys.executable, "tools/check_notebooks.py"], cwd=ROOT, capture_output=True, text=True,
                           timeout=300)
    assert check.returncode == 0, check.stderr
    assert artifact_files() == artifacts, "running the notebooks wrote to an artifacts directory"
    assert outside == [], "JupyterLab requested hosts other than loopback"
