"""Delight's web client, as its own origin: a page on another port talks to the API across
origins exactly as the app's chat hook does (history, POST, EventSource with ?token=)."""

from __future__ import annotations

import uuid
from urllib.parse import urlencode

import httpx
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.browser.conftest import Deployment, console

TIMEOUT = 20


def _open(browser, static_site: str, api: str, token: str) -> None:
    browser.get(f"{static_site}/index.html?{urlencode({'api': api, 'token': token})}")
    WebDriverWait(browser, TIMEOUT).until(lambda d: d.execute_script("return window.delight.ready"))


def _send_and_wait(browser, text: str) -> str:
    box = browser.find_element(By.ID, "message")
    box.send_keys(text)
    browser.find_element(By.ID, "send").click()

    def finished(d):
        replies = d.find_elements(By.CSS_SELECTOR, "#messages li.assistant")
        return replies and replies[-1].get_attribute("data-state") in ("complete", "error")

    WebDriverWait(browser, TIMEOUT).until(finished, console(browser))
    last = browser.find_elements(By.CSS_SELECTOR, "#messages li.assistant")[-1]
    assert last.get_attribute("data-state") == "complete", browser.execute_script(
        "return window.delight.errors"
    )
    return str(last.text)


def test_delight_client_on_another_origin_chats_continues_and_recalls(
    browser, static_site: str, deployment: Deployment
) -> None:
    api = deployment.main.url
    assert static_site.split(":")[-1] != api.split(":")[-1]  # really another origin
    user = f"web-{uuid.uuid4().hex[:8]}"
    token = f"dev:{user}"

    _open(browser, static_site, api, token)
    assert browser.execute_script("return window.delight.conversationId") is None  # no history yet
    first = _send_and_wait(browser, "My sister's name is Maya.")
    cid = browser.execute_script("return window.delight.conversationId")
    assert first and cid
    (usage,) = browser.execute_script("return window.delight.usage")
    assert set(usage) == {"model", "input_tokens", "output_tokens", "total_tokens", "cost_usd"}
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"] > 0
    assert usage["cost_usd"] > 0
    # The reply the browser assembled from tokens is the one the service stored.
    stored = httpx.get(
        f"{api}/api/v1/companion/history", headers={"Authorization": f"Bearer {token}"}
    ).json()["conversations"][0]
    assert stored["id"] == cid and stored["messages"][-1]["content"] == first

    # The app opened again: history's newest conversation is continued, with its messages.
    _open(browser, static_site, api, token)
    assert browser.execute_script("return window.delight.conversationId") == cid
    shown = [li.text for li in browser.find_elements(By.CSS_SELECTOR, "#messages li")]
    assert shown == ["My sister's name is Maya.", first]
    second = _send_and_wait(browser, "What is my sister's name?")
    assert browser.execute_script("return window.delight.conversationId") == cid
    assert "Maya" in second
    assert browser.execute_script("return window.delight.errors") == []
    assert len(browser.execute_script("return window.delight.usage")) == 1  # this page load's turn
