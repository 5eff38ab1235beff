"""The adaptive_mission graph's logic (seed Pattern 3), run for real by LangGraph over a scripted
model and in-memory services: the drawn branches, parallel assessments, routing to exactly one
path, fallbacks and `degraded`, the challenge path's model use, and the small pure helpers.
No Postgres, no network (tests/integration/test_adaptive_mission.py runs it on the embedded Postgres)."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from domain.calendar import local_midnight
from domain.missions import daily_index, top_goal
from graphs.adaptive_mission import ASSESSMENTS, GRAPH, PATHS, build, graph, route
from graphs.registry import Graph
from nodes.context import Context
from prompts.adaptive_mission import SELF_CARE_TEMPLATES, goal_from_prompt
from state.adaptive_mission import ChallengeDraft
from state.goals import Goal, GoalStatus, Mission
from state.schemas import EmotionScores
from tests.support.fakes import (
    FakeGoals,
    FakeServices,
    ScriptedChatModel,
    bad_request_error,
    connection_error,
    fake_services,
)

NOW = datetime(2026, 5, 12, 15, 0, tzinfo=UTC)
DAY = timedelta(hours=24)


# --- in-memory services ---------------------------------------------------------------------------


def make_svc(model: ScriptedChatModel | None = None, **settings: Any) -> FakeServices:
    svc = fake_services(model=model, **settings)
    svc.missions.now = NOW
    return svc


def complete(svc: FakeServices, n: int, *, ago: timedelta = timedelta(hours=1), minutes: int = 10) -> None:
    """`n` missions completed `ago`, `minutes` each."""
    svc.missions.events.extend([(NOW - ago, minutes)] * n)


def last_day(args: dict[str, Any]) -> bool:
    """`completed_since` asked for the last 24 h (count_completions), not since local midnight
    (assess_energy's momentum)."""
    return bool(args["since"] == NOW - DAY)


@dataclass
class Run:
    out: dict[str, Any]
    events: list[dict[str, Any]]
    seconds: float

    @property
    def steps(self) -> dict[str, str]:
        """node -> how its one run finished (a node that ran twice fails the test)."""
        done = [e for e in self.events if e.get("type") == "step" and e["status"] != "running"]
        nodes = [e["node"] for e in done]
        assert len(nodes) == len(set(nodes)), f"a node ran more than once: {nodes}"
        return {e["node"]: e["status"] for e in done}


USER = uuid.UUID("8d2f8a4e-6a55-4a44-9d7c-3f6a2a1b0c01")


async def run(
    svc: FakeServices, feeling: str | None = None, *, tz: str = "UTC", user: uuid.UUID = USER
) -> Run:
    ctx = Context(user_id=user, thread_id="t", timezone=tz, now=NOW, services=svc)
    compiled: Graph = build(svc.settings).compile(name=GRAPH)
    out: dict[str, Any] = {}
    events: list[dict[str, Any]] = []
    t0 = time.perf_counter()
    chunk: Any  # (mode, chunk) pairs: the stream modes are a list
    async for mode, chunk in compiled.astream(
        {"feeling": feeling}, context=ctx, stream_mode=["custom", "values"]
    ):
        if mode == "values":
            out = chunk
        else:
            events.append(chunk)
    return Run(out, events, time.perf_counter() - t0)


def scores(**s: float) -> EmotionScores:
    return EmotionScores(**s)


def goal(
    title: str, *, target: date | None = None, created: datetime = NOW, status: GoalStatus = "active"
) -> Goal:
    return Goal(
        id=str(uuid.uuid4()),
        user_id=str(USER),
        title=title,
        value_category="craft",
        target_date=target,
        status=status,
        created_at=created,
    )


# --- the drawn graph ------------------------------------------------------------------------------


def test_drawing_shows_fan_out_join_and_every_branch() -> None:
    edges = {(e.source, e.target, e.conditional) for e in graph.get_graph().edges}
    for branch in ASSESSMENTS:
        assert ("__start__", branch, False) in edges
        assert (branch, "decide", False) in edges
    for path in PATHS:
        assert ("decide", path, True) in edges  # inferred from route's Literal return type
        assert (path, "__end__", False) in edges
    assert graph.name == GRAPH == "adaptive_mission"


def test_route_returns_the_decided_path() -> None:
    for path in PATHS:
        assert route({"path": path}) == path


def test_input_and_output_schemas_are_narrow() -> None:
    assert set(graph.get_input_jsonschema()["properties"]) == {"feeling"}
    assert set(graph.get_output_jsonschema()["properties"]) == {
        "path",
        "reason",
        "missions",
        "emotion",
        "energy",
        "completed_last_day",
        "degraded",
    }


# --- one path per run, chosen from the three assessments --------------------------------------------


async def test_sad_feeling_takes_the_self_care_path_only() -> None:
    svc = make_svc()
    svc.model.answer_analysis(scores(sadness=0.9))
    r = await run(svc, "I feel awful")

    assert r.out["path"] == "self_care"
    assert "sadness 0.90 > 0.7" in r.out["reason"]
    (m,) = r.out["missions"]
    assert (m["kind"], m["energy_level"], m["status"]) == ("self_care", "low", "pending")
    assert 5 <= m["estimated_minutes"] <= 15
    assert m["title"] in {t["title"] for t in SELF_CARE_TEMPLATES}
    assert r.out["emotion"]["dominant"] == "sadness"
    assert r.out["degraded"] == []
    # Exactly one path node ran; every other node reported one ok step.
    assert r.steps == dict.fromkeys([*ASSESSMENTS, "decide", "self_care"], "ok")
    assert [e for e in r.events if e["type"] == "path"] == [
        {"type": "path", "path": "self_care", "reason": r.out["reason"]}
    ]
    # The stated feeling was scored, not the chat history; and with one structured call.
    assert svc.adaptive.args_of("recent_user_messages") == []
    (call,) = svc.model.calls
    assert call.messages[-1].text == "I feel awful"
    assert [u.site for u in svc.usage.records] == ["adaptive.assess_emotion"]


async def test_joy_and_high_recorded_energy_take_the_challenge_path() -> None:
    svc = make_svc()
    svc.model.answer_analysis(scores(joy=0.95))  # then the offline ChallengeDraft answer
    svc.adaptive.recorded = {"joy": 0.9}
    g = goal("Ship my pottery shop website")
    svc.goals = FakeGoals([g])
    r = await run(svc, "Today is brilliant!")

    assert (r.out["path"], r.out["energy"]) == ("challenge", "high")
    (m,) = r.out["missions"]
    assert m["kind"] == "challenge" and m["energy_level"] == "high"
    assert m["goal_id"] == g.id and m["value_category"] == "craft"
    assert "Ship my pottery shop website" in m["title"]
    assert 30 <= m["estimated_minutes"] <= 90
    assert [u.site for u in svc.usage.records] == ["adaptive.assess_emotion", "adaptive.challenge"]
    assert goal_from_prompt(svc.model.calls[1].messages[-1].text) == "Ship my pottery shop website"


async def test_three_completions_take_the_celebration_path_and_list_them() -> None:
    svc = make_svc()
    svc.model.answer_analysis(scores(neutral=1.0))
    complete(svc, 3)
    done = [
        Mission(
            id=str(uuid.uuid4()),
            title=f"done {i}",
            estimated_minutes=10,
            energy_level="low",
            status="completed",
        )
        for i in range(3)
    ]
    svc.adaptive.completed = done
    r = await run(svc, "just checking in")

    assert r.out["path"] == "celebration"
    assert r.out["completed_last_day"] == 3
    assert "3 missions completed in the last day" in r.out["reason"]
    rest, *listed = r.out["missions"]
    assert (rest["kind"], rest["energy_level"]) == ("celebration", "low")
    assert [m["title"] for m in listed] == ["done 0", "done 1", "done 2"]
    assert svc.adaptive.args_of("completed_missions_since") == [{"since": NOW - DAY}]


async def test_an_ordinary_day_takes_the_triad_path_and_creates_nothing() -> None:
    svc = make_svc()
    svc.model.answer_analysis(scores(neutral=1.0))
    complete(svc, 2)
    r = await run(svc, "fine")

    assert r.out["path"] == "triad"
    assert "2 missions completed in the last 24 h" in r.out["reason"]
    assert r.out["missions"] == []
    assert svc.missions.args_of("create_once") == []
    assert svc.missions.args_of("list") == [{"status": "pending", "limit": 500}]


async def test_reason_carries_every_number_of_the_decision() -> None:
    svc = make_svc()
    svc.model.answer_analysis(scores(sadness=0.2, joy=0.35))
    svc.missions.sessions.append((NOW - timedelta(hours=2), 70))
    complete(svc, 1, minutes=15)
    r = await run(svc, "meh")

    assert r.out["path"] == "triad"
    reason = r.out["reason"]
    for part in (
        "sadness 0.20",
        "joy 0.35",
        "energy medium",
        "85 focused minutes",
        "1 mission today",
        "1 mission completed in the last 24 h",
    ):
        assert part in reason, (part, reason)


# --- the assessments ------------------------------------------------------------------------------


async def test_assessments_run_concurrently() -> None:
    svc = make_svc(branch_timeout_s=2.0)
    svc.model.stall("structured", 0.2)
    svc.adaptive.stall(0.2, op="latest_emotion_scores")
    svc.missions.stall(0.2, op="completed_since", when=last_day)
    r = await run(svc, "hello")

    assert r.out["degraded"] == []
    assert r.seconds < 0.45, f"three 0.2 s assessments took {r.seconds:.2f} s: not parallel"


async def test_no_feeling_scores_the_latest_messages_newest_last() -> None:
    svc = make_svc()
    svc.adaptive.messages = ["first", "second", "third", "fourth"]
    svc.model.answer_analysis(scores(fear=0.6))
    r = await run(svc, None)

    assert svc.adaptive.args_of("recent_user_messages") == [{"since": NOW - DAY, "until": NOW, "limit": 3}]
    (call,) = svc.model.calls
    assert call.messages[-1].text == "second\nthird\nfourth"
    assert r.out["emotion"]["dominant"] == "fear"


@pytest.mark.parametrize("feeling", [None, "", "   \n "])
async def test_no_text_at_all_is_neutral_without_a_model_call(feeling: str | None) -> None:
    svc = make_svc()
    r = await run(svc, feeling)

    assert r.out["emotion"] == {"dominant": "neutral", "scores": {"neutral": 1.0}}
    assert svc.model.calls == []
    assert r.out["degraded"] == []
    assert r.out["path"] == "triad"


async def test_energy_reads_the_recorded_emotion_and_today_since_local_midnight() -> None:
    svc = make_svc()
    svc.adaptive.recorded = {"sadness": 0.9}
    r = await run(svc, None, tz="Pacific/Auckland")

    midnight = datetime(2026, 5, 12, 12, 0, tzinfo=UTC)  # 00:00 on 13 May in Auckland (UTC+12)
    assert svc.missions.args_of("minutes_since") == [{"since": midnight}]
    # since local midnight (assess_energy's momentum) and over the last day (count_completions)
    since = [a["since"] for a in svc.missions.args_of("completed_since")]
    assert sorted(since) == sorted([midnight, NOW - DAY])
    assert svc.adaptive.args_of("latest_emotion_scores") == [{"since": NOW - DAY, "until": NOW}]
    assert r.out["energy"] == "low"
    assert (r.out["path"], r.out["reason"].split(":")[0]) == ("self_care", "energy is low")


async def test_fatigue_today_lowers_energy_into_self_care() -> None:
    svc = make_svc()
    svc.missions.sessions.append((NOW - timedelta(hours=3), 150))
    r = await run(svc, None)

    assert (r.out["energy"], r.out["path"]) == ("low", "self_care")
    assert "150 focused minutes" in r.out["reason"]


# --- failures: fall back, name the branch, still route ----------------------------------------------


def _break(svc: FakeServices, branch: str, mode: str) -> None:
    err = RuntimeError(f"{branch} is down")
    ops = {
        "assess_emotion": ("model", "structured"),
        "assess_energy": ("reads", "latest_emotion_scores"),
        "count_completions": ("missions", "completed_since"),
    }
    target, op = ops[branch]
    when = last_day if op == "completed_since" else None
    if target == "model":
        if mode == "error":
            svc.model.fail("structured", err)
        else:
            svc.model.stall("structured", 2.0)
    else:
        store = svc.adaptive if target == "reads" else svc.missions
        if mode == "error":
            store.fail(err, op=op, when=when)
        else:
            store.stall(2.0, op=op, when=when)


# Each setup would take another path if its branch worked; the fallback sends it to `expected`.
CASES: dict[str, tuple[str, str, Any]] = {
    # sad text would be self_care; neutral emotion instead -> triad
    "assess_emotion": ("triad", "emotion", {"dominant": "neutral", "scores": {"neutral": 1.0}}),
    # joyful text + joyful record would be challenge; medium energy instead -> triad
    "assess_energy": ("triad", "energy", "medium"),
    # 3 completions would be celebration; 0 instead -> triad
    "count_completions": ("triad", "completed_last_day", 0),
}


@pytest.mark.parametrize("mode", ["error", "timeout"])
@pytest.mark.parametrize("branch", ASSESSMENTS)
async def test_failed_assessment_falls_back_and_still_routes(branch: str, mode: str) -> None:
    svc = make_svc()
    feeling = {"assess_emotion": "sad", "assess_energy": "joy", "count_completions": "calm"}[branch]
    svc.model.always_analyse(
        {"sad": scores(sadness=0.9), "joy": scores(joy=0.95), "calm": scores(neutral=1.0)}[feeling]
    )
    svc.adaptive.recorded = {"joy": 0.9} if branch == "assess_energy" else None
    if branch == "count_completions":
        complete(svc, 3, ago=timedelta(hours=20))  # yesterday in UTC: no momentum, no fatigue
    _break(svc, branch, mode)

    r = await run(svc, feeling)

    expected_path, key, fallback_value = CASES[branch]
    assert r.out[key] == fallback_value
    assert r.out["degraded"] == [branch]
    assert r.out["path"] == expected_path
    assert r.steps == {**dict.fromkeys([*ASSESSMENTS, "decide", expected_path], "ok"), branch: "degraded"}
    if mode == "timeout":
        assert r.seconds < 1.5  # cut off near branch_timeout_s (0.3 s), not after the 2 s stall


async def test_all_three_assessments_failing_still_gives_a_triad() -> None:
    svc = make_svc()
    for branch in ASSESSMENTS:
        _break(svc, branch, "error")
    r = await run(svc, "anything")

    assert sorted(r.out["degraded"]) == sorted(ASSESSMENTS)
    assert (r.out["path"], r.out["energy"], r.out["completed_last_day"]) == ("triad", "medium", 0)
    assert r.steps["decide"] == "ok" and r.steps["triad"] == "ok"


async def test_transient_model_errors_retry_inside_the_gateway_not_degrade() -> None:
    svc = make_svc()
    svc.model.fail("structured", connection_error(), times=2)
    svc.model.always_analyse(scores(sadness=0.95))
    r = await run(svc, "sad")

    assert r.out["degraded"] == []
    assert r.out["path"] == "self_care"
    assert len(svc.model.calls) == 3


# --- the challenge path ---------------------------------------------------------------------------


def _energized(svc: FakeServices) -> None:
    svc.model.answer_analysis(scores(joy=0.95))
    svc.adaptive.recorded = {"joy": 0.9}


def challenge_refused() -> ScriptedChatModel:
    """Answers the emotion call; the challenge call (its prompt has a `Goal:` line) gets a 400."""
    return ScriptedChatModel().fail_when(
        lambda messages: goal_from_prompt(messages[-1].text) is not None, bad_request_error()
    )


@pytest.mark.parametrize("failure", ["refused", "invalid output"])
async def test_challenge_model_failure_falls_back_to_a_template(failure: str) -> None:
    svc = make_svc(model=challenge_refused() if failure == "refused" else None)
    # "invalid output": every structured call answers EmotionScores, which no ChallengeDraft
    # validates, even after the gateway's feedback retries.
    svc.model.always_analyse(scores(joy=0.95))
    svc.adaptive.recorded = {"joy": 0.9}
    svc.goals = FakeGoals([goal("Learn to play the cello")])
    r = await run(svc, "great day")

    assert r.out["path"] == "challenge"
    assert r.out["degraded"] == ["challenge"]
    (m,) = r.out["missions"]
    assert m["title"] == "Stretch session: Learn to play the cello"
    assert (m["kind"], m["energy_level"], m["estimated_minutes"]) == ("challenge", "high", 60)
    assert r.steps["challenge"] == "ok"  # the path itself completed, on its fallback


async def test_challenge_draft_is_held_to_high_energy_and_30_to_90_minutes() -> None:
    svc = make_svc()
    _energized(svc)
    svc.model.answer_analysis(
        ChallengeDraft(
            title="Marathon", description="go", estimated_minutes=120, energy_level="low", why="why"
        )
    )
    r = await run(svc, "yay")

    (m,) = r.out["missions"]
    assert (m["energy_level"], m["estimated_minutes"]) == ("high", 90)
    assert m["goal_id"] is None and m["value_category"] == "growth"  # no active goal


async def test_challenge_already_drafted_today_makes_no_model_call() -> None:
    svc = make_svc()
    _energized(svc)
    first = await run(svc, "yay")
    _energized(svc)
    second = await run(svc, "yay")

    assert first.out["missions"] == second.out["missions"]
    assert [u.site for u in svc.usage.records].count("adaptive.challenge") == 1


async def test_self_care_is_created_once_per_day() -> None:
    svc = make_svc()
    svc.model.always_analyse(scores(sadness=0.9))
    first = await run(svc, "sad")
    second = await run(svc, "sad")

    assert first.out["missions"] == second.out["missions"]
    assert len(svc.missions.rows) == 1


# --- helpers ----------------------------------------------------------------------------------------


def test_local_midnight_follows_the_users_timezone_and_dst() -> None:
    assert local_midnight(NOW, "UTC") == datetime(2026, 5, 12, tzinfo=UTC)
    assert local_midnight(NOW, "Pacific/Auckland") == datetime(2026, 5, 12, 12, tzinfo=UTC)
    assert local_midnight(NOW, "America/Los_Angeles") == datetime(2026, 5, 12, 7, tzinfo=UTC)
    # 8 March 2026: New York springs forward at 02:00; midnight was still EST (UTC-5).
    dst_day = datetime(2026, 3, 8, 20, 0, tzinfo=UTC)
    assert local_midnight(dst_day, "America/New_York") == datetime(2026, 3, 8, 5, tzinfo=UTC)


def test_daily_template_is_fixed_per_day_and_varies_across_days() -> None:
    day = date(2026, 5, 12)
    n = len(SELF_CARE_TEMPLATES)
    assert daily_index(USER, day, n) == daily_index(USER, day, n)
    picks = {daily_index(USER, day + timedelta(days=i), n) for i in range(30)}
    assert len(picks) >= 3
    assert all(0 <= p < n for p in picks)
    assert all(5 <= t["estimated_minutes"] <= 15 for t in SELF_CARE_TEMPLATES)


def test_top_goal_prefers_the_nearest_target_then_the_newest() -> None:
    old = goal("old, no date", created=NOW - timedelta(days=30))
    new = goal("new, no date", created=NOW)
    far = goal("far", target=date(2027, 1, 1))
    near = goal("near", target=date(2026, 6, 1))
    paused = goal("paused", target=date(2026, 5, 13), status="paused")
    assert top_goal([old, new]) == new
    assert top_goal([old, far, new, near, paused]) == near
    assert top_goal([paused]) is None
    assert top_goal([]) is None
