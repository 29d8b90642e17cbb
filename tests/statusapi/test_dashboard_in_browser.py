"""The dashboard in headless Chromium: the catalog loads, a filter narrows it, a model's detail
shows what serves it, and an endpoint that becomes Ready shows up without a reload. Saves a
screenshot (tests/statusapi/artifacts/dashboard.png, or $MODELYARD_ARTIFACTS)."""

from __future__ import annotations

import os
import pathlib
import shutil
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from modelyard import statusapi
from statusapi.conftest import Api, endpoint, local_entry, training_job

webdriver = pytest.importorskip("selenium.webdriver")
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException  # noqa: E402
from selenium.webdriver.chrome.options import Options  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
ARTIFACTS = pathlib.Path(os.environ.get("MODELYARD_ARTIFACTS", pathlib.Path(__file__).parent / "artifacts"))

pytestmark = pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER), reason="needs chromium and chromium-driver (apt-get install)"
)


@pytest.fixture()
def browser(tmp_path: pathlib.Path) -> Iterator[Any]:
    options = Options()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-dev-shm-usage", f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1440,1500",
    ):  # fmt: skip
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=str(CHROMEDRIVER)))
    driver.set_page_load_timeout(20)
    try:
        yield driver
    finally:
        driver.quit()


RERENDERED = (NoSuchElementException, StaleElementReferenceException)


def _until(driver: Any, predicate: Callable[[Any], Any], what: str) -> Any:
    """Poll until ``predicate`` holds. The page re-renders rows as data arrives, so an element
    found a moment ago may be gone: that is "not yet", like one not found. The page has no timer
    that re-fetches, so a change seen at all came through the event stream."""
    wait = WebDriverWait(driver, 60, poll_frequency=0.05, ignored_exceptions=RERENDERED)
    return wait.until(predicate, message=what)


def _rows(driver: Any, selector: str) -> list[Any]:
    return list(driver.find_elements(By.CSS_SELECTOR, selector))


def test_dashboard_filters_and_live_updates(browser: Any, view: statusapi.Cache, api: Api) -> None:
    browser.get(api.base + "/")
    _until(browser, lambda d: len(_rows(d, "tr.model-row")) == 23, "23 models in the catalog")
    _until(browser, lambda d: "on" in d.find_element(By.ID, "live").get_attribute("class").split(), "live")
    assert "23 models" in browser.find_element(By.ID, "catalog-count").text

    # A filter narrows the list.
    Select(browser.find_element(By.ID, "filter-category")).select_by_value("vision-vlm")
    _until(browser, lambda d: len(_rows(d, "tr.model-row")) == 4, "4 vision models")
    browser.find_element(By.ID, "filter-q").send_keys("FP8")
    _until(browser, lambda d: len(_rows(d, "tr.model-row")) == 2, "2 FP8 vision models")
    browser.find_element(By.ID, "filter-q").clear()
    Select(browser.find_element(By.ID, "filter-category")).select_by_value("text-llm")
    _until(browser, lambda d: len(_rows(d, "tr.model-row")) == 5, "5 text models")

    # A model's detail: requirements, capabilities, the endpoints serving it.
    browser.find_element(By.CSS_SELECTOR, 'tr.model-row[data-id="Qwen/Qwen3-4B-Instruct-2507"]').click()
    _until(browser, lambda d: len(_rows(d, "#detail tr.detail-endpoint")) == 3, "3 endpoints in the detail")
    detail = browser.find_element(By.ID, "detail").text.lower()
    assert "requirements" in detail and "min vram gb" in detail and "capabilities" in detail

    # Endpoints with their traffic shares.
    shares = {
        r.get_attribute("data-name"): r.find_element(By.CSS_SELECTOR, "td.share").text
        for r in _rows(browser, "tr.endpoint-row")
    }
    assert shares["prod/qwen-a"] == "75%" and shares["prod/qwen-c"] == "0%"
    assert len(_rows(browser, "tr.job-row")) == 2

    # qwen-c becomes Ready: the page learns it from the event stream, without a reload.
    browser.execute_script("window.__sameDocument = true;")
    fetches = browser.execute_script("return window.modelyard.fetches;")
    view.upsert(endpoint("qwen-c", "qwen3-4b-instruct-2507", weight=100, phase="Ready"))
    row = 'tr.endpoint-row[data-name="prod/qwen-c"]'
    _until(browser, lambda d: d.find_element(By.CSS_SELECTOR, row).get_attribute("data-phase") == "Ready",
           "qwen-c Ready on the page")  # fmt: skip
    _until(browser, lambda d: d.find_element(By.CSS_SELECTOR, row + " td.share").text == "20%", "20% share")
    assert browser.execute_script("return window.__sameDocument === true;")
    assert browser.execute_script("return window.modelyard.fetches;") > fetches
    # A new training job appears too.
    view.upsert(
        training_job("ft-new", "qwen3-4b-instruct-2507", "Running", step=60, totalSteps=100, etaSeconds=95)
    )
    _until(browser, lambda d: len(_rows(d, "tr.job-row")) == 3, "the new job on the page")

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "dashboard.png"
    browser.set_window_size(
        1440, int(browser.execute_script("return document.documentElement.scrollHeight;")) + 160
    )
    browser.save_screenshot(str(shot))
    print(f"dashboard screenshot: {shot}")


def test_dashboard_with_a_token_asks_for_it_then_streams(
    browser: Any, view: statusapi.Cache, serve: Callable[..., Api]
) -> None:
    api = serve(view, token="dash-token")
    browser.get(api.base + "/")
    _until(browser, lambda d: d.find_element(By.ID, "token-form").is_displayed(), "the token form")
    assert not _rows(browser, "tr.model-row")
    browser.find_element(By.ID, "token-input").send_keys("dash-token")
    browser.find_element(By.CSS_SELECTOR, "#token-form button").click()  # reloads with the token
    _until(browser, lambda d: len(_rows(d, "tr.model-row")) == 23, "the catalog with the token")
    _until(browser, lambda d: "on" in d.find_element(By.ID, "live").get_attribute("class").split(), "live")
    # The event stream (read through fetch, since EventSource cannot send the header) still works.
    view.upsert(endpoint("qwen-c", "qwen3-4b-instruct-2507", weight=100, phase="Ready"))
    row = 'tr.endpoint-row[data-name="prod/qwen-c"]'
    _until(browser, lambda d: d.find_element(By.CSS_SELECTOR, row).get_attribute("data-phase") == "Ready",
           "qwen-c Ready through the fetch stream")  # fmt: skip


def test_dashboard_shows_scaling_live_traffic_and_colours_by_health(
    browser: Any, view: statusapi.Cache, serve: Callable[..., Api], loop: Any
) -> None:
    from aiohttp import web

    from modelyard.gateway import metrics as gateway_metrics
    from modelyard.registry import estimates

    # One gateway's /metrics, as the real gateway renders it.
    stats = gateway_metrics.Metrics()

    async def render(_: web.Request) -> web.Response:
        return web.Response(body=stats.exposition(), content_type="text/plain")

    app = web.Application()
    app.router.add_get("/metrics", render)
    gateway = loop.serve(app)

    auto = endpoint(
        "qwen-auto",
        "qwen3-4b-instruct-2507",
        phase="Ready",
        reason="Available",
        message="1/1 replicas ready",
        autoscaling={
            "desiredReplicas": 3,
            "currentReplicas": 1,
            "demand": 2,
            "lastScaleReason": "demand 17 > 8",
        },
    )
    auto["spec"]["autoscaling"] = {"minReplicas": 0, "maxReplicas": 4}
    view.upsert(auto)
    view.upsert(endpoint("qwen-cold", "qwen3-4b-instruct-2507", phase="Pending", reason="Unschedulable",
                         message="0/1 nodes are available"))  # fmt: skip
    view.upsert(local_entry("file:///models/tiny-local", served="tiny-local"))
    api = serve(view, gateway_metrics_urls=(gateway + "/metrics",), traffic_interval_s=0.2)
    browser.get(api.base + "/")
    row = 'tr.endpoint-row[data-name="prod/qwen-auto"]'
    _until(browser, lambda d: d.find_element(By.CSS_SELECTOR, row), "the autoscaled endpoint")

    def text(cell: str) -> Callable[[Any], str]:
        return lambda d: str(d.find_element(By.CSS_SELECTOR, f"{row} td.{cell}").text)

    _until(browser, lambda d: text("replicas")(d).startswith("1 \u2192 3"), "now 1, wanted 3")
    _until(browser, lambda d: "(0\u20134)" in text("replicas")(d), "the autoscaling bounds")

    # A healthy reason is not printed in error red; an Unschedulable one is.
    def colour(name: str) -> Callable[[Any], str]:
        selector = f'tr.endpoint-row[data-name="prod/{name}"] .reason'
        return lambda d: str(d.find_element(By.CSS_SELECTOR, selector).value_of_css_property("color"))

    red = _until(browser, colour("qwen-cold"), "the Unschedulable reason")
    _until(browser, lambda d: colour("qwen-auto")(d) != red, "a healthy reason not in red")

    # Live demand, req/s, latency and tokens/s from what the gateway reports.
    listed = api.get("/api/v1/endpoints")[1]["data"]
    served = next(e["served_name"] for e in listed if e["name"] == "qwen-auto")
    demand, sent = stats.endpoint("prod/qwen-auto")
    demand.inc(5)
    sent.inc(40)
    for _ in range(4):
        stats.child(stats.duration, served, "prod/qwen-auto", "200").observe(0.25)
    stats.count_usage(served, {"prompt_tokens": 100, "completion_tokens": 300})
    _until(browser, lambda d: text("demand")(d) == "5", "live demand 5")
    _until(browser, lambda d: text("latency")(d) == "250 ms", "the mean latency")
    _until(browser, lambda d: text("rps")(d) not in ("\u2013", "0.0"), "a request rate")  # 40 over <= 30 s
    _until(browser, lambda d: text("tps")(d) not in ("\u2013", "0.0"), "a token rate")

    # Size and GPU memory of a local entry come from what the operator resolved.
    browser.find_element(By.ID, "filter-q").send_keys("tiny-local")
    local = 'tr.model-row[data-id="tiny-local"] td'
    size = estimates.human_count(1_100_048_384)
    shown = [size, "3 GiB\nrec. 4 GiB"]
    _until(browser, lambda d: [c.text for c in d.find_elements(By.CSS_SELECTOR, local)][2:4] == shown,
           "size and GPU memory of the local entry")  # fmt: skip
