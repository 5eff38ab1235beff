"""Lexicon emotion scoring and regex fact extraction behind the offline model."""

from __future__ import annotations

import pytest

from services.llm.lexicon import dominant, extract_durable_fact, score_emotions
from state.schemas import EMOTIONS


def test_sad_text_scores_high_sadness() -> None:
    scores = score_emotions("I feel so sad and hopeless, nothing works")
    assert scores["sadness"] > 0.7
    assert dominant(scores) == "sadness"


def test_joyful_text_scores_high_joy() -> None:
    scores = score_emotions("I'm so happy, today was amazing and I feel great!")
    assert scores["joy"] > 0.8
    assert dominant(scores) == "joy"


def test_text_without_signal_is_fully_neutral() -> None:
    scores = score_emotions("I went to the store and bought milk")
    assert set(scores) == set(EMOTIONS)
    assert scores["neutral"] == pytest.approx(1.0)
    assert all(scores[k] == 0 for k in EMOTIONS if k != "neutral")
    assert dominant(scores) == "neutral"


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("I am really worried about tomorrow", "fear"),
        ("This is so frustrating, I'm furious", "anger"),
        ("Wow, that was totally unexpected", "surprise"),
        ("I adore my family and I'm grateful for them", "love"),
    ],
)
def test_each_label_is_reachable(text: str, label: str) -> None:
    assert dominant(score_emotions(text)) == label


def test_scores_stay_in_unit_interval() -> None:
    text = "so so very happy happy happy amazing amazing wonderful great!!! " * 5
    assert all(0.0 <= v <= 1.0 for v in score_emotions(text).values())


def test_inflections_are_recognised() -> None:
    assert score_emotions("She happily worries")["joy"] > 0
    assert score_emotions("She happily worries")["fear"] > 0
    assert score_emotions("Such happiness")["joy"] > 0


def test_intensifier_boosts() -> None:
    assert score_emotions("I am very sad")["sadness"] > score_emotions("I am sad")["sadness"]


def test_negated_joy_turns_towards_sadness() -> None:
    plain, negated = score_emotions("I am happy"), score_emotions("I am not happy")
    assert negated["joy"] == 0
    assert negated["sadness"] > 0
    assert dominant(negated) == "sadness"
    assert plain["joy"] > negated["joy"]


def test_negated_sadness_is_calm_not_sad() -> None:
    scores = score_emotions("I'm not sad at all")
    assert scores["sadness"] == 0
    assert dominant(scores) == "neutral"


def test_negation_stops_at_clause_boundary() -> None:
    scores = score_emotions("I'm not tired, I'm happy")
    assert scores["joy"] > 0.5
    assert dominant(scores) == "joy"


def test_scoring_is_deterministic() -> None:
    text = "Honestly I'm anxious but also a bit excited!"
    assert score_emotions(text) == score_emotions(text)


def test_dominant_of_empty_scores_is_neutral() -> None:
    assert dominant({}) == "neutral"
    assert dominant(dict.fromkeys(EMOTIONS, 0.0)) == "neutral"


@pytest.mark.parametrize(
    ("text", "kind", "words"),
    [
        ("My sister's name is Maya", "fact", ["sister", "Maya"]),
        ("Hi! My dog is called Rex.", "fact", ["dog", "Rex"]),
        ("I am a nurse", "fact", ["nurse"]),
        ("I work as a teacher", "fact", ["works", "teacher"]),
        ("I live in Berlin", "fact", ["lives", "Berlin"]),
        ("I love hiking in the mountains", "preference", ["loves", "hiking", "mountains"]),
        ("I prefer mornings for deep work", "preference", ["prefers", "mornings"]),
        ("I don't like running", "preference", ["doesn't like", "running"]),
        ("I'm really stressed about my exams", "stressor", ["stressed", "exams"]),
        ("My boss stresses me out", "stressor", ["boss"]),
    ],
)
def test_durable_facts_keep_the_users_words(text: str, kind: str, words: list[str]) -> None:
    found = extract_durable_fact(text)
    assert found is not None
    sentence, found_kind = found
    assert found_kind == kind
    assert sentence.startswith("The user")
    for word in words:
        assert word in sentence


def test_first_person_becomes_third_person() -> None:
    assert extract_durable_fact("I'm worried about my job") == (
        "The user is worried about their job.",
        "stressor",
    )


@pytest.mark.parametrize(
    "text",
    [
        "What's my sister's name?",
        "My sister's name is Maya, remember?",
        "Do you remember that I live in Berlin",
        "remember my dog is called Rex",
        "I went to the store and bought milk",
        "My day is awful",
        "I like it",
        "I am a bit tired",
        "",
    ],
)
def test_no_durable_fact(text: str) -> None:
    assert extract_durable_fact(text) is None
