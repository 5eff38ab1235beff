"""A real headless Chromium (Debian's package, driven through the system chromedriver) against
real `python -m api` processes on loopback. The browser's network is cut off beyond loopback,
so every page here must work offline: nothing may come from a CDN.

`make test` installs chromium and chromium-driver when they are missing; without them these
tests fail (they never skip)."""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from core.settings import ROOT

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
# Test runs write here (git-ignored): screenshots, server logs of failed runs.
ARTIFACTS = ROOT / "tests" / "browser" / "artifacts"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Api:
    base: str
    proc: subprocess.Popen[str]
    log: Path


def _clean_env(**extra: str) -> dict[str, str]:
    drop = ("OPENAI_", "DATABASE_URL", "AUTH_", "JWT_", "HOST", "PORT", "CORS_", "SIM_", "BRANCH_", "REDIS_")
    return {**{k: v for k, v in os.environ.items() if not k.startswith(drop)}, **extra}


def start_api(pg_url: str, workdir: Path, name: str, **env: str) -> Api:
    port = free_port()
    log = workdir / f"{name}.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "api"],
        cwd=ROOT,
        env=_clean_env(PORT=str(port), DATABASE_URL=pg_url, **env),
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        text=True,
    )
    return Api(f"http://127.0.0.1:{port}", proc, log)


def wait_healthy(api: Api, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{api.base}/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert api.proc.poll() is None, api.log.read_text()
        time.sleep(0.1)
    raise AssertionError(f"{api.base} did not become healthy:\n{api.log.read_text()}")


def stop_apis(*apis: Api) -> None:
    for api in apis:
        api.proc.send_signal(signal.SIGTERM)
    for api in apis:
        try:
            api.proc.wait(20)
        except subprocess.TimeoutExpired:
            api.proc.kill()
            api.proc.wait()


@dataclass
class Deployment:
    """Two API processes of one deployment (one database). `main` serves the pages; `other` is
    a second origin whose slow embedder (SIM_EMBED_MS) outlasts its BRANCH_TIMEOUT_S, so its
    memory retrieval falls back: real configuration, no test hook."""

    main: Api
    other: Api


@pytest.fixture(scope="session")
def deployment(pg_url: str) -> Iterator[Deployment]:
    workdir = Path(tempfile.mkdtemp(prefix="delight-browser-"))
    # A model with a real model's pace on both: replies stream token by token, and a
    # goal's milestones are planned one after another (a background run may go to either).
    pace = {"SIM_LLM_TOKEN_MS": "10", "SIM_LLM_FIRST_TOKEN_MS": "50", "DECOMPOSE_CONCURRENCY": "1"}
    main = start_api(pg_url, workdir, "main", **pace)
    other = start_api(pg_url, workdir, "other", **pace, BRANCH_TIMEOUT_S="0.5", SIM_EMBED_MS="1200")
    try:
        wait_healthy(main)
        wait_healthy(other)
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
def browser() -> Iterator[object]:
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


def console(driver: object) -> str:
    """The page's console, for failure messages."""
    try:
        return "\n".join(e["message"] for e in driver.get_log("browser"))  # type: ignore[attr-defined]
    except Exception:
        return ""
