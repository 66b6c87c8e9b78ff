"""The web page in a real browser: Debian's headless Chromium driven by Selenium through
/usr/bin/chromedriver (installed by .ci/setup.d/chromium.sh; nothing downloads a browser),
against a real uvicorn server on 127.0.0.1.

One walk through the page: a wrong token, then the right one; a refused submission (the
server's 422 next to the form), then a small job watched until it succeeds; its page (plot,
log, settings), the neighbour explorer, an analogy, the projection with the neighbours
highlighted, a download. A screenshot of each page goes to build/screenshots/.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.service

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
SHOTS = Path(__file__).resolve().parents[1] / "build" / "screenshots"
WAIT = 60  # seconds for any one condition (a job's whole run included)

if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
    pytest.skip("the browser tests need Debian's chromium and chromium-driver "
                "(/usr/bin/chromium, /usr/bin/chromedriver; .ci/setup.d/chromium.sh installs "
                "them)", allow_module_level=True)
webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
from conftest import SERVICE_TOKEN  # noqa: E402
from selenium.webdriver.chrome.service import Service as ChromeService  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--no-first-run", "--window-size=1280,1700",
                f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        options.add_argument(arg)
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    options.add_experimental_option("prefs", {
        "download.default_directory": str(downloads), "download.prompt_for_download": False,
    })
    # an explicit driver path: Selenium Manager is never asked to fetch anything
    driver = webdriver.Chrome(service=ChromeService(executable_path=str(CHROMEDRIVER)),
                              options=options)
    driver.downloads = downloads
    try:
        yield driver
    finally:
        driver.quit()


def _wait(driver: Any, condition: Any, message: str, timeout: float = WAIT) -> Any:
    return WebDriverWait(driver, timeout, poll_frequency=0.1).until(
        lambda d: condition(d), message)


def _text(driver: Any, css: str) -> str:
    """The element's rendered text, read in one step (the page redraws as it polls)."""
    text = driver.execute_script(
        "const e = document.querySelector(arguments[0]); return e ? e.innerText : '';", css)
    return " ".join(str(text).split())  # table cells come tab-separated


def _attr(driver: Any, css: str, name: str) -> str:
    """An attribute of the element, read in one step (it may be redrawn meanwhile)."""
    value = driver.execute_script(
        "const e = document.querySelector(arguments[0]);"
        "return e ? e.getAttribute(arguments[1]) || '' : '';", css, name)
    return str(value)


def _shot(driver: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    assert driver.save_screenshot(str(path)), path
    assert path.stat().st_size > 10_000  # a rendered page, not a blank image


def _visible(driver: Any, element_id: str) -> bool:
    found = driver.find_elements(By.ID, element_id)
    return bool(found) and found[0].is_displayed()


def _fill(driver: Any, name: str, value: str) -> None:
    field = driver.find_element(By.CSS_SELECTOR, f'[name="{name}"]')
    field.clear()
    field.send_keys(value)


@pytest.mark.timeout(240)
def test_sign_in_train_watch_and_explore_in_the_browser(
    tmp_path: Path, service_server: Any, service_corpus: Any, browser: Any
) -> None:
    started = time.monotonic()
    # enough text for a few seconds of training (a plot with a line), 300 words
    corpus = service_corpus(tmp_path / "roots" / "web.txt", seed=11, sentences=40_000,
                            vocab=300)
    analogies = tmp_path / "analogies.txt"
    analogies.write_text(": section\nw1 w2 w3 w4\nw5 w6 w7 w8\n")
    similarity = tmp_path / "similarity.tsv"
    similarity.write_text("w1\tw2\t1.0\nw3\tw4\t2.0\nw5\tw6\t3.0\n")
    server = service_server(max_concurrent_jobs=1, eval_analogies=str(analogies),
                            eval_similarity=str(similarity))
    driver = browser

    # --- sign in: a wrong token is refused with a clear message, then the right one -----
    driver.get(server.url + "/")
    _wait(driver, lambda d: _visible(d, "signin-view"), "the sign-in form did not show")
    _shot(driver, "1-signin")
    driver.find_element(By.ID, "token").send_keys("not-the-token-123")
    driver.find_element(By.ID, "signin-button").click()
    _wait(driver, lambda d: _text(d, "#signin-error"), "no message for a wrong token")
    assert _text(driver, "#signin-error") == ("The server did not accept this token; check "
                                              "it and try again.")
    assert not _visible(driver, "jobs-view")
    driver.find_element(By.ID, "token").clear()
    driver.find_element(By.ID, "token").send_keys(SERVICE_TOKEN)
    driver.find_element(By.ID, "signin-button").click()
    _wait(driver, lambda d: d.find_elements(By.ID, "submit-button"),
          "the submit form was not built from the schema")
    _wait(driver, lambda d: _visible(d, "jobs-empty"), "the empty job list was not shown")
    assert _visible(driver, "jobs-view")
    assert driver.execute_script("return sessionStorage.getItem('distw2v.token')") == \
        SERVICE_TOKEN

    # --- the form shows the config schema's defaults and limits ---------------------------
    dim = driver.find_element(By.CSS_SELECTOR, '[name="train.dim"]')
    assert dim.get_attribute("value") == "100"
    assert (dim.get_attribute("min"), dim.get_attribute("max")) == ("1", "10000")
    assert driver.find_element(By.CSS_SELECTOR, '[name="vocab.min_count"]'
                               ).get_attribute("value") == "5"
    engines = driver.find_elements(By.CSS_SELECTOR, '[name="engine"] option')
    assert [o.get_attribute("value") for o in engines] == ["local", "spark"]

    # --- a setting out of bounds: the server's sentence next to the form ------------------
    _fill(driver, "sources", str(corpus))
    _fill(driver, "train.epochs", "0")
    driver.find_element(By.ID, "submit-button").click()
    _wait(driver, lambda d: _text(d, "#submit-error"), "the 422 was not shown")
    assert _text(driver, "#submit-error") == ("invalid request: train.epochs: epochs must be "
                                              "at least 1.")
    assert _text(driver, '[data-field="train.epochs"] .field-error') == \
        "epochs must be at least 1."
    _shot(driver, "2-submit-refused")
    assert server.http.get("/v1/jobs").json()["total"] == 0

    # --- a small job, watched until it succeeds -----------------------------------------
    _fill(driver, "name", "browser test")
    for name, value in (("train.epochs", "10"), ("train.dim", "16"), ("train.workers", "1"),
                        ("train.seed", "7"), ("vocab.min_count", "1")):
        _fill(driver, name, value)
    driver.find_element(By.ID, "submit-button").click()
    _wait(driver, lambda d: d.current_url.split("#", 1)[-1].startswith("/jobs/"),
          "the page did not move to the job")
    job_id = driver.current_url.rsplit("/", 1)[-1]
    job = server.job(job_id)
    assert job["name"] == "browser test" and job["train"]["epochs"] == 10
    assert job["vocab"]["min_count"] == 1 and job["train"]["dim"] == 16
    assert job["train"]["window"] == 5  # untouched settings keep their defaults
    _wait(driver, lambda d: _text(d, "#job-state") == "succeeded",
          f"the job did not succeed: {_text(driver, '#job-error')}")
    assert _text(driver, '#job-status [data-key="progress"]') == "100%"

    # --- its page: plot of words/s and learning rate, log, settings ----------------------
    def points(d: Any, line: str) -> int:
        return len(_attr(d, f"#plot polyline.{line}", "points").split())

    # redrawn once more when the job has ended, from the whole history
    _wait(driver, lambda d: points(d, "wps") >= 2 and points(d, "lr") >= 2
          and points(d, "loss") >= 2,
          "no lines of words/s, learning rate and loss in the plot: "
          f"{server.http.get(f'/v1/jobs/{job_id}/history').json()}")
    lr = _attr(driver, "#plot polyline.lr", "points")
    lr_y = [float(p.split(",")[1]) for p in lr.split()]
    assert lr_y == sorted(lr_y)  # the rate decays: the line goes down (SVG y grows down)
    _wait(driver, lambda d: "--- attempt 1" in _text(d, "#job-log"), "no log tail")
    settings = _text(driver, "#job-settings")
    assert "train.dim 16" in settings and str(corpus) in settings
    figures = _text(driver, "#job-evaluation")
    assert "analogies" in figures and "total 2" in figures and "pairs 3" in figures, figures
    assert not _visible(driver, "no-evaluation")

    # --- the explorer: neighbours, the projection with them highlighted ----------------------
    _wait(driver, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#projection circle")) == 300,
          "the projection of the top 300 words was not drawn")
    assert "300 words, 16 dimensions" in _text(driver, "#model-info")
    _shot(driver, "3-job")
    driver.find_element(By.ID, "neighbour-word").send_keys("w1")
    driver.find_element(By.CSS_SELECTOR, "#neighbour-form button").click()
    _wait(driver, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#neighbours li")) == 10,
          "no neighbours listed")
    shown = [li.get_attribute("data-word")
             for li in driver.find_elements(By.CSS_SELECTOR, "#neighbours li")]
    expected = server.http.get(f"/v1/models/{job_id}/similar",
                               params={"word": "w1", "topn": 10}).json()["similar"]
    assert shown == [s["word"] for s in expected]
    _wait(driver, lambda d: len(d.find_elements(By.CSS_SELECTOR,
                                                "#projection circle.neighbour")) == 10,
          "the neighbours were not highlighted")
    highlighted = {c.get_attribute("data-word")
                   for c in driver.find_elements(By.CSS_SELECTOR, "#projection circle.neighbour")}
    assert highlighted == set(shown)
    query = driver.find_elements(By.CSS_SELECTOR, "#projection circle.query")
    assert [c.get_attribute("data-word") for c in query] == ["w1"]
    assert len(driver.find_elements(By.CSS_SELECTOR, "#projection circle")) == 300
    labels = {t.text for t in driver.find_elements(By.CSS_SELECTOR, "#projection text.label")}
    assert labels == set(shown) | {"w1"}

    # --- an analogy, w1 : w2 :: w3 : ? -------------------------------------------------
    for element_id, word in (("analogy-a", "w1"), ("analogy-b", "w2"), ("analogy-c", "w3")):
        driver.find_element(By.ID, element_id).send_keys(word)
    driver.find_element(By.CSS_SELECTOR, "#analogy-form button").click()
    _wait(driver, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#analogies li")) == 5,
          "no analogy answers")
    answers = [li.get_attribute("data-word")
               for li in driver.find_elements(By.CSS_SELECTOR, "#analogies li")]
    solved = server.http.get(f"/v1/models/{job_id}/analogy", params=[
        ("positive", "w2"), ("positive", "w3"), ("negative", "w1"), ("topn", "5")]).json()
    assert answers == [s["word"] for s in solved["similar"]]
    driver.execute_script("document.getElementById('explorer').scrollIntoView()")
    _shot(driver, "4-explorer")

    # --- a download, with the token sent by the page ----------------------------------------
    driver.find_element(By.CSS_SELECTOR, 'button.download[data-format="word2vec-text"]').click()
    target = driver.downloads / f"{job_id}-vectors.txt"
    _wait(driver, lambda d: target.exists() and "saved" in _text(d, "#download-status"),
          f"nothing downloaded: {_text(driver, '#download-status')} "
          f"{sorted(os.listdir(driver.downloads))}")
    assert target.read_text(encoding="utf-8").split("\n", 1)[0] == "300 16"

    # --- back to the list: the job, succeeded ---------------------------------------------
    driver.find_element(By.CSS_SELECTOR, '#job-view a[href="#/"]').click()
    row = f'#jobs tr[data-id="{job_id}"]'
    _wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, f'{row}[data-state="succeeded"]'),
          "the job is not listed as succeeded")
    assert "browser test" in _text(driver, row) and "100%" in _text(driver, row)
    _shot(driver, "5-jobs")
    assert time.monotonic() - started < 120


def test_a_token_that_stops_working_sends_the_page_back_to_sign_in(
    service_server: Any, browser: Any
) -> None:
    server = service_server()
    driver = browser
    driver.get(server.url + "/")
    # a token kept from before (this tab's sessionStorage) that the server does not know
    driver.execute_script("sessionStorage.setItem('distw2v.token', 'an-old-token-123');"
                          "location.hash = '#/jobs/abc'; location.reload();")
    _wait(driver, lambda d: _visible(d, "signin-view") and _text(d, "#signin-error"),
          "a stale token did not lead back to sign-in")
    assert _text(driver, "#signin-error") == "Your token is no longer accepted; sign in again."
    assert driver.execute_script("return sessionStorage.getItem('distw2v.token')") is None


def test_the_api_docs_draw_under_their_content_security_policy(
    service_server: Any, browser: Any
) -> None:
    server = service_server()
    driver = browser
    driver.get(server.url + "/docs")  # Swagger UI: its inline script runs, by its hash
    _wait(driver, lambda d: "distw2v training service" in _text(d, ".swagger-ui .info"),
          "Swagger UI did not draw under its policy")
    _wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, ".opblock"),
          "Swagger UI drew no operations (the schema was not fetched)")
    _shot(driver, "docs-swagger")
    driver.get(server.url + "/redoc")  # ReDoc: its styles and search worker allowed
    _wait(driver, lambda d: "distw2v training service" in _text(d, "h1"),
          "ReDoc did not draw under its policy")
    _wait(driver, lambda d: "/v1/jobs" in _text(d, "body"), "ReDoc drew no operations")
    _shot(driver, "docs-redoc")
