"""A real headless Chromium (Debian's package, driven through the system chromedriver) against
real `python -m api` processes on loopback. The browser's network is cut off beyond loopback,
so every page here must work offline: nothing may come from a CDN.

`make test` installs chromium and chromium-driver when they are missing; without them these
tests fail (they never skip)."""

from __future__ import annotations

import functools
import http.server
import shutil
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from core.settings import ROOT
from tests.support.servers import ApiServer, free_port

if TYPE_CHECKING:
    from selenium.webdriver.chromium.webdriver import ChromiumDriver

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
# Test runs write here (git-ignored): screenshots, server logs of failed runs.
ARTIFACTS = ROOT / "tests" / "browser" / "artifacts"


def stop_apis(*apis: ApiServer) -> None:
    for api in apis:
        api.stop()


@dataclass
class Deployment:
    """Two API processes of one deployment (one database). `main` serves the pages; `other` is
    a second origin whose slow embedder (SIM_EMBED_MS) outlasts its BRANCH_TIMEOUT_S, so its
    memory retrieval falls back: real configuration, no test hook."""

    main: ApiServer
    other: ApiServer


@pytest.fixture(scope="session")
def deployment(pg_url: str) -> Iterator[Deployment]:
    workdir = Path(tempfile.mkdtemp(prefix="delight-browser-"))
    # A model with a real model's pace on both: replies stream token by token, and a
    # goal's milestones are planned one after another (a background run may go to either).
    pace = {"SIM_LLM_TOKEN_MS": "10", "SIM_LLM_FIRST_TOKEN_MS": "50", "DECOMPOSE_CONCURRENCY": "1"}
    main = ApiServer(workdir / "main.log", DATABASE_URL=pg_url, **pace)
    other = ApiServer(
        workdir / "other.log", DATABASE_URL=pg_url, **pace, BRANCH_TIMEOUT_S="0.5", SIM_EMBED_MS="1200"
    )
    try:
        main.wait_healthy()
        other.wait_healthy()
        yield Deployment(main, other)
    finally:
        stop_apis(main, other)
        shutil.rmtree(workdir, ignore_errors=True)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="session")
def static_site() -> Iterator[str]:
    """A tiny static server on another port: the origin Delight's web app is served from."""
    handler = functools.partial(_QuietHandler, directory=str(Path(__file__).parent / "site"))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="session")
def browser() -> Iterator[ChromiumDriver]:
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not shutil.which(p)]
    if missing:
        pytest.fail(
            f"browser tests need Debian's chromium and chromium-driver ({', '.join(missing)} missing): "
            "`make test` installs them, or `apt-get install -y chromium chromium-driver`",
            pytrace=False,
        )
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="delight-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        "--disable-sync",
        "--disable-dev-shm-usage",
        f"--user-data-dir={profile}",
        "--window-size=1280,1080",
        # The network beyond loopback is cut off: names do not resolve and every non-loopback
        # address goes to a proxy that is not there (Chromium never proxies loopback).
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
        f"--proxy-server=http://127.0.0.1:{free_port()}",
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # The system driver given explicitly: Selenium Manager (which would download one) never runs.
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    driver.set_script_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def console(driver: ChromiumDriver) -> str:
    """The page's console, for failure messages."""
    try:
        return "\n".join(e["message"] for e in driver.get_log("browser"))
    except Exception:
        return ""
