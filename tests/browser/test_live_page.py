"""The page served at `/`, in Chromium: sign in, chat with Eliza while the chat graph lights up
node by node, then the same page against a second API process (another origin) whose memory
branch falls back, and a goal's decomposition followed milestone by milestone."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.browser.conftest import ARTIFACTS, Deployment, console

TIMEOUT = 20
CHAT_NODES = ["detect_emotion", "retrieve_memories", "load_progress", "compose_reply", "remember_exchange"]

# Records what the user saw: every batch of DOM changes in the conversation (the reply's length
# and state at that moment) and every state each graph node went through.
OBSERVE = """
const seen = (window.seen = {batches: [], nodes: {}, milestones: []});
const reply = () => [...document.querySelectorAll('#messages li.assistant')].pop();
new MutationObserver(() => {
  const r = reply();
  if (r) seen.batches.push({len: r.querySelector('.text').textContent.length, state: r.dataset.state});
}).observe(document.getElementById('messages'),
           {subtree: true, childList: true, characterData: true, attributes: true});
for (const id of ['chat-graph', 'goal-graph']) {
    // Old values: several changes can land in one callback, and by then the attribute holds the last.
  new MutationObserver((records) => {
    for (const m of records) (seen.nodes[m.target.dataset.node] ||= []).push(m.oldValue);
  }).observe(document.getElementById(id),
             {subtree: true, attributes: true, attributeOldValue: true, attributeFilter: ['data-status']});
}
new MutationObserver(() => {
  seen.milestones.push({count: document.getElementById('milestones').children.length,
                        state: document.getElementById('goal-status').dataset.state});
}).observe(document.getElementById('milestones'), {childList: true});
"""


def sign_in(browser, page: str, user: str, api: str = "") -> None:
    browser.get(page)
    browser.find_element(By.ID, "api-base").send_keys(api)
    browser.find_element(By.ID, "dev-user").send_keys(user)
    browser.find_element(By.ID, "sign-in").click()
    WebDriverWait(browser, TIMEOUT).until(
        lambda d: d.execute_script("return document.body.dataset.ready === 'true'"),
        f"sign-in did not finish: {browser.find_element(By.ID, 'signin-error').text} {console(browser)}",
    )
    browser.execute_script(OBSERVE)


def send(browser, text: str) -> str:
    browser.execute_script("window.seen.batches = []; window.seen.nodes = {};")
    box = browser.find_element(By.ID, "message")
    box.send_keys(text)
    browser.find_element(By.ID, "send").click()

    def finished(d):
        replies = d.find_elements(By.CSS_SELECTOR, "#messages li.assistant")
        return replies and replies[-1].get_attribute("data-state") in ("complete", "error")

    WebDriverWait(browser, TIMEOUT).until(finished, console(browser))
    last = browser.find_elements(By.CSS_SELECTOR, "#messages li.assistant")[-1]
    assert last.get_attribute("data-state") == "complete", last.text
    return str(last.text)


def shown(browser, graph: str, name: str) -> list[str]:
    """The states a graph node went through since `seen.nodes` was last cleared (from the
    observed old values and the current one), leaving out the reset to idle a new run does."""
    olds = browser.execute_script("return window.seen.nodes[arguments[0]] || []", name)
    now = browser.find_element(By.CSS_SELECTOR, f'#{graph} [data-node="{name}"]').get_attribute("data-status")
    return [s for s in [*olds[1:], now] if s != "idle"] if olds else []


def node(browser, name: str):
    return browser.find_element(By.CSS_SELECTOR, f'#chat-graph [data-node="{name}"]')


@pytest.fixture(scope="module")
def page(browser, deployment: Deployment) -> Iterator[object]:
    sign_in(browser, f"{deployment.main.url}/", f"page-{uuid.uuid4().hex[:8]}")
    yield browser


def test_chat_graph_is_drawn_from_the_registry(page) -> None:
    drawn = [g.get_attribute("data-node") for g in page.find_elements(By.CSS_SELECTOR, "#chat-graph g.node")]
    assert sorted(drawn) == sorted([*CHAT_NODES, "__start__", "__end__"])
    fallible = {
        g.get_attribute("data-node")
        for g in page.find_elements(By.CSS_SELECTOR, "#chat-graph .can-fall-back")
    }
    assert fallible == {"detect_emotion", "retrieve_memories", "load_progress"}
    assert len(page.find_elements(By.CSS_SELECTOR, "#chat-graph path.edge")) == 8
    # Everything the page loaded came from the service (the browser has no other network).
    origin = page.execute_script("return location.origin")
    loaded = page.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    assert {u.rsplit("/", 1)[-1] for u in loaded} >= {"app.js", "graph.js", "sse.js", "app.css"}
    assert all(u.startswith(origin) for u in loaded), loaded
    # Laid out top to bottom: the branches share a row between __start__ and compose_reply.
    y = {n: node(page, n).find_element(By.TAG_NAME, "rect").get_attribute("y") for n in CHAT_NODES}
    assert y["detect_emotion"] == y["retrieve_memories"] == y["load_progress"]
    assert float(y["load_progress"]) < float(y["compose_reply"]) < float(y["remember_exchange"])


def test_reply_streams_token_by_token_while_each_node_lights_up(page) -> None:
    reply = send(page, "My sister's name is Maya and I just ran my first 10k, I'm so happy!")
    seen = page.execute_script("return window.seen")
    # The reply grew over many separate DOM updates before the turn completed.
    growing = sorted({b["len"] for b in seen["batches"] if b["state"] == "streaming" and b["len"] > 0})
    assert len(growing) >= 5, seen["batches"]
    assert seen["batches"][-1]["state"] == "complete" and seen["batches"][-1]["len"] == len(reply)
    # Every node was shown running, then done, with its milliseconds.
    for name in CHAT_NODES:
        assert shown(page, "chat-graph", name) == ["running", "ok"], (name, seen["nodes"])
        assert node(page, name).get_attribute("data-status") == "ok"
        assert re.fullmatch(r"done · \d+ ms", node(page, name).find_element(By.CLASS_NAME, "ms").text)
    assert page.find_element(By.ID, "emotion").text.startswith("joy")
    assert re.match(r"streak \d+ d · DCI \d\.\d\d", page.find_element(By.ID, "progress").text)
    assert re.match(r"\d+ in \+ \d+ out tokens · \$0\.\d+", page.find_element(By.ID, "usage").text)
    assert page.find_element(By.ID, "thread-id").text != "new"


def test_second_turn_recalls_the_first_and_the_page_is_captured(page) -> None:
    thread = page.find_element(By.ID, "thread-id").text
    reply = send(page, "What is my sister's name?")
    assert "Maya" in reply
    assert page.find_element(By.ID, "thread-id").text == thread  # the same conversation
    memories = [li.text for li in page.find_elements(By.CSS_SELECTOR, "#memories li")]
    assert any("Maya" in m for m in memories), memories
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    assert page.save_screenshot(str(ARTIFACTS / "live-page.png"))


def test_a_goal_decomposition_is_followed_milestone_by_milestone(page) -> None:
    page.find_element(By.CSS_SELECTOR, '[data-tab="goal"]').click()
    page.find_element(By.ID, "goal-title").send_keys("Run a half marathon")
    page.find_element(By.ID, "goal-description").send_keys("I want to feel strong again")
    page.find_element(By.ID, "create-goal").click()
    WebDriverWait(page, TIMEOUT).until(
        lambda d: d.find_element(By.ID, "goal-status").get_attribute("data-state") in ("complete", "error"),
        console(page),
    )
    status = page.find_element(By.ID, "goal-status")
    assert status.get_attribute("data-state") == "complete", status.text
    items = page.find_elements(By.CSS_SELECTOR, "#milestones > li.milestone")
    assert 3 <= len(items) <= 7
    assert [int(li.get_attribute("data-sequence")) for li in items] == list(range(1, len(items) + 1))
    assert all(li.find_elements(By.CSS_SELECTOR, "ul > li") for li in items)  # each with its missions
    assert status.text.startswith(f"Planned: {len(items)} milestones")
    # They arrived one by one while the run was still planning.
    counts = [
        m["count"] for m in page.execute_script("return window.seen.milestones") if m["state"] == "planning"
    ]
    assert len(set(counts)) >= 3, counts
    graph = {
        g.get_attribute("data-node"): g.get_attribute("data-status")
        for g in page.find_elements(By.CSS_SELECTOR, "#goal-graph g.node")
    }
    assert graph["store_plan"] == graph["plan_missions"] == "ok"


def test_the_page_against_a_second_api_process_shows_a_fallen_back_branch(
    page, deployment: Deployment
) -> None:
    other = deployment.other.url
    user = f"page-{uuid.uuid4().hex[:8]}"
    page.execute_script("sessionStorage.clear()")
    sign_in(page, f"{deployment.main.url}/", user, api=other)  # a fresh page: the chat tab
    assert page.find_element(By.ID, "where").text == other  # calls go to the other origin
    send(page, "Long day at work today.")
    assert shown(page, "chat-graph", "retrieve_memories") == ["running", "degraded"]
    fell_back = node(page, "retrieve_memories")
    assert fell_back.get_attribute("data-status") == "degraded"
    label = fell_back.find_element(By.CLASS_NAME, "ms").text
    assert re.fullmatch(r"fell back · \d+ ms", label), label
    assert int(label.split("·")[1].split()[0]) >= 450  # BRANCH_TIMEOUT_S=0.5 on that process
    for name in ("compose_reply", "remember_exchange"):
        assert node(page, name).get_attribute("data-status") == "ok"
    assert "fell back: retrieve_memories" in page.find_element(By.ID, "usage").text
