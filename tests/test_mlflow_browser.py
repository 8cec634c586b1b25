"""The MLflow UI in a real browser: headless Debian `chromium`, a fresh profile per page
(a new user: nothing in local storage), on the URLs the smoke study's `study run` printed,
over `mlflow server` on its store (tests/test_mlflow_ui.py's fixture).

MLflow 3's UI keeps the GenAI / model-training choice in the browser (GenAI for a new
one) unless the URL says `workflowType=machine_learning`; the study run's description is
cut after its first lines ("Show more"). So: the experiment URL lands on the runs table
(the study run, and its trials once its row is expanded), not on "Traces" and "Token
usage"; the run URL shows the decision line without a click (the run URL says the view too:
without it a new browser shows the run under GenAI's "Evaluations"). A screenshot of each page
goes to $STUDY_TEST_ARTIFACTS (or the test's tmp_path).

Chromium is driven over --remote-debugging-pipe (the DevTools protocol on fds 3 and 4,
JSON messages ended by NUL): no driver package, and a page is read when it has rendered,
not after a guessed time.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import re
import select
import shutil
import subprocess
import time
from pathlib import Path

import pytest

# The UI on the smoke study's store, and its study run: fixtures, read by name below.
from tests.test_mlflow_ui import NOTE, runs, server, study_run, tags  # noqa: F401

pytestmark = pytest.mark.ray
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
PRINTED_ADDRESS = "http://127.0.0.1:5000"  # `study ui`'s default: what a SQLite study prints
WIDTH, HEIGHT = 1400, 1000


class Chromium:
    """One headless chromium with a profile of its own, driven over the DevTools pipe."""

    def __init__(self, profile: Path, log: Path):
        to_child, self._write = os.pipe()
        self._read, from_child = os.pipe()
        # Out of the way of 3 and 4 before they are placed there in the child.
        high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 100) for fd in (to_child, from_child)]

        def plumb():
            os.dup2(high[0], 3)
            os.dup2(high[1], 4)
            for fd in high:
                os.close(fd)

        command = [CHROMIUM, "--headless=new", "--no-sandbox", "--remote-debugging-pipe"]
        command += [f"--user-data-dir={profile}", f"--window-size={WIDTH},{HEIGHT}"]
        command += ["--no-first-run", "--disable-gpu", "about:blank"]
        with log.open("w") as out:
            self.process = subprocess.Popen(
                command, preexec_fn=plumb, close_fds=False, stdout=out, stderr=out
            )
        for fd in (to_child, from_child, *high):
            os.close(fd)
        self._buffer = b""
        self._id = 0

    def send(self, method: str, params: dict | None = None, session: str | None = None):
        self._id += 1
        message = {"id": self._id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._write, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + 30
        while True:
            while b"\0" not in self._buffer:
                left = deadline - time.monotonic()
                assert left > 0 and self.process.poll() is None, f"chromium: no reply to {method}"
                if select.select([self._read], [], [], left)[0]:
                    self._buffer += os.read(self._read, 1 << 20)
            line, self._buffer = self._buffer.split(b"\0", 1)
            reply = json.loads(line)
            if reply.get("id") == self._id:
                assert "error" not in reply, reply
                return reply["result"]

    def open(self, url: str) -> str:
        """A new tab on `url`; its session."""
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})
        page = session["sessionId"]
        metrics = {"width": WIDTH, "height": HEIGHT, "deviceScaleFactor": 1, "mobile": False}
        self.send("Emulation.setDeviceMetricsOverride", metrics, page)
        self.send("Page.navigate", {"url": url}, page)
        return page

    def evaluate(self, page: str, expression: str):
        params = {"expression": expression, "returnByValue": True}
        return self.send("Runtime.evaluate", params, page)["result"].get("value")

    def text_when(self, page: str, *wanted: str, timeout: float = 40) -> str:
        """The page's text once every `wanted` string is in it (the React app renders
        after its API calls); the last text read when the time is up."""
        deadline = time.monotonic() + timeout
        while True:
            text = self.evaluate(page, "document.body ? document.body.innerText : ''") or ""
            if all(part in text for part in wanted) or time.monotonic() > deadline:
                return text
            time.sleep(0.5)

    def screenshot(self, page: str, path: Path) -> None:
        shot = self.send("Page.captureScreenshot", {"format": "png"}, page)
        path.write_bytes(base64.b64decode(shot["data"]))

    def close(self) -> None:
        try:
            self.send("Browser.close")
        except (AssertionError, OSError):
            pass
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        os.close(self._write)
        os.close(self._read)


@pytest.fixture
def browser(tmp_path):
    """A chromium factory: each call a new browser with a fresh profile; all closed after."""
    if CHROMIUM is None:
        pytest.skip("no chromium on PATH (apt-get install --no-install-recommends chromium)")
    opened: list[Chromium] = []

    def start(name: str) -> Chromium:
        opened.append(Chromium(tmp_path / f"profile-{name}", tmp_path / f"chromium-{name}.log"))
        return opened[-1]

    yield start
    for each in opened:
        each.close()


@pytest.fixture
def artifacts(tmp_path) -> Path:
    """Where the screenshots go: $STUDY_TEST_ARTIFACTS, or the test's own tmp_path."""
    folder = Path(os.environ.get("STUDY_TEST_ARTIFACTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def ui(request):
    """(the UI's base URL, (experiment, study run)): tests/test_mlflow_ui.py's fixtures."""
    return request.getfixturevalue("server"), request.getfixturevalue("study_run")


def printed_urls(smoke, base: str) -> tuple[str, str]:
    """The experiment and study run URLs that `study run` printed at its end, pointed at
    the test's server (they name `study ui`'s default address)."""
    _, done, _ = smoke
    found = re.findall(r"https?://\S+#/experiments/\S+", done.stdout)
    (experiment,) = [url for url in found if "/runs/" not in url]
    (run,) = [url for url in found if "/runs/" in url]
    for url in (experiment, run):
        assert url.startswith(f"{PRINTED_ADDRESS}/#/experiments/"), url
        assert url.endswith("?workflowType=machine_learning"), url
    return base + experiment[len(PRINTED_ADDRESS) :], base + run[len(PRINTED_ADDRESS) :]


EXPANDER = '[data-component-id*="runnamecellrenderer"]'  # the study run row's "+"


def test_the_printed_experiment_url_opens_the_runs_table_not_the_genai_view(
    smoke, ui, browser, artifacts
):
    base, (experiment, parent) = ui
    url, _ = printed_urls(smoke, base)
    name = parent["info"]["run_name"]
    trials = [
        run["info"]["run_name"]
        for run in runs(
            base,
            experiment["experiment_id"],
            f"tags.mlflow.parentRunId = '{parent['info']['run_id']}'",
        )
    ]
    chromium = browser("experiment")
    page = chromium.open(url)
    text = chromium.text_when(page, name, "Run Name")
    chromium.screenshot(page, artifacts / "experiment-landing.png")
    assert name in text and "Run Name" in text and "matching runs" in text, text[:2000]
    assert "Token usage" not in text and "Latency" not in text  # the GenAI overview
    assert "Evaluation runs" not in text  # nor its sidebar
    # The trials are nested under the study run: one click on its "+" lists them.
    assert chromium.evaluate(page, f"document.querySelectorAll('{EXPANDER}').length") == 1
    chromium.evaluate(page, f"document.querySelector('{EXPANDER}').click()")
    text = chromium.text_when(page, *trials, timeout=20)
    chromium.screenshot(page, artifacts / "experiment-trials.png")
    assert [trial for trial in trials if trial not in text] == []


VISIBLE = """(() => {
  const bold = [...document.querySelectorAll('strong')].find(e => e.innerText === %s);
  if (!bold) return 'not in the page';
  const box = bold.getBoundingClientRect();
  const hit = document.elementFromPoint(box.x + box.width / 2, box.y + box.height / 2);
  return box.bottom <= innerHeight && hit && (hit === bold || bold.contains(hit))
    ? 'visible' : 'hidden at ' + JSON.stringify(box);
})()"""


def test_the_printed_run_url_shows_the_decision_line_without_a_click(smoke, ui, browser, artifacts):
    base, (_, parent) = ui
    _, url = printed_urls(smoke, base)
    first = tags(parent["data"])[NOTE].splitlines()[0].strip()
    assert first.startswith("**digits, 2 per class:** "), first
    shown = first.replace("**", "")  # `digits, 2 per class: lenet5 ... (verdict)`
    chromium = browser("run")
    page = chromium.open(url)
    text = chromium.text_when(page, shown)
    chromium.screenshot(page, artifacts / "study-run.png")
    assert shown in text, text[:2000]
    assert "Evaluation runs" not in text  # the model-training sidebar, not the GenAI one
    label = json.dumps(first.split("**")[1])  # the bold `digits, 2 per class:`
    assert chromium.evaluate(page, VISIBLE % label) == "visible"
