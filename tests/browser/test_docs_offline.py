"""/docs and /redoc render with the browser's network cut off beyond loopback: their JS and CSS
come from the installed package, served by the service itself."""

from __future__ import annotations

import httpx
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.browser.conftest import Deployment, console

TIMEOUT = 20
LOADED = "return performance.getEntriesByType('resource').map(e => e.name)"
# Scripts and stylesheets only: ReDoc's sidebar credit is an <img> from its CDN, hard-coded
# in the bundle; offline it fails and ReDoc hides it.
CODE = (
    "return performance.getEntriesByType('resource').filter(e => e.initiatorType !== 'img').map(e => e.name)"
)


def test_the_browser_has_no_network_beyond_loopback(browser, deployment: Deployment) -> None:
    browser.get(f"{deployment.main.url}/health")
    outcome = browser.execute_async_script(
        """const done = arguments[arguments.length - 1];
        fetch('https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui.css', {mode: 'no-cors'})
          .then(() => done('reached'), (e) => done('failed: ' + e.message));"""
    )
    assert outcome.startswith("failed"), outcome


def test_swagger_ui_renders_every_operation_offline(browser, deployment: Deployment) -> None:
    base = deployment.main.url
    spec = httpx.get(f"{base}/openapi.json").json()
    operations = {(method.upper(), path) for path, methods in spec["paths"].items() for method in methods}
    browser.get(f"{base}/docs")

    def shown(d):
        # (An operation with several tags is listed under each.)
        return {
            (
                block.find_element(By.CSS_SELECTOR, ".opblock-summary-method").text,
                block.find_element(By.CSS_SELECTOR, ".opblock-summary-path").text.replace("\u200b", ""),
            )
            for block in d.find_elements(By.CSS_SELECTOR, ".opblock")
        }

    WebDriverWait(browser, TIMEOUT).until(lambda d: shown(d) == operations, console(browser))
    assert ("GET", "/api/v1/companion/history") in operations
    loaded = browser.execute_script(LOADED)
    assert any(u.endswith("/swagger-ui-bundle.js") for u in loaded)
    assert all(u.startswith(base) for u in loaded), loaded


def test_redoc_renders_offline(browser, deployment: Deployment) -> None:
    base = deployment.main.url
    browser.get(f"{base}/redoc")
    WebDriverWait(browser, TIMEOUT).until(
        lambda d: "Companion History" in d.find_element(By.TAG_NAME, "body").text, console(browser)
    )
    loaded = browser.execute_script(CODE)
    assert any(u.endswith("/redoc.standalone.js") for u in loaded)
    assert all(u.startswith(base) for u in loaded), loaded
