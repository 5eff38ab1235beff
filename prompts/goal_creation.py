"""Prompts and texts of the goal workflows."""

from __future__ import annotations


def goal_emotion_text(title: str, description: str) -> str:
    """What the emotion scorer reads: why the user is setting this goal."""
    return f"{title}. {description}".strip()


def similar_goals_query(title: str) -> str:
    return f"goals similar to {title}"


def goal_memory(title: str, description: str) -> str:
    return f"User created goal '{title}'. Motivation: {description or 'not stated'}"


GOAL_CREATED_TITLE = "Your goal is set"


def goal_created_body(title: str) -> str:
    return f"“{title}” is on its way: Eliza is breaking it into small missions now."
