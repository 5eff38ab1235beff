"""The simulated latency profile: what the offline model and embedder wait (SIM_* settings), and
the critical path those waits imply for one chat turn.

Critical path of a chat turn = the slowest gathering branch (the analysis call, or the query
embedding of retrieval; progress has no simulated wait) + the streamed reply + the write-back's
embedding of the exchange (the one simulated call after the reply). Everything else (database,
LangGraph, HTTP, Python) is overhead on top of it. Waits are nominal (jitter averages out)."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

from langchain_core.messages import HumanMessage

# Same chunking as services/llm/offline.py `_pieces`: one simulated token wait per chunk.
_PIECE = re.compile(r"\s*\S+\s*")


def pieces(text: str) -> int:
    return len(_PIECE.findall(text)) or 1


@dataclass(frozen=True)
class SimProfile:
    first_token_ms: float = 100.0
    token_ms: float = 3.0
    embed_ms: float = 20.0
    jitter: float = 0.05
    seed: int = 7

    def env(self) -> dict[str, str]:
        return {
            "SIM_LLM_FIRST_TOKEN_MS": str(self.first_token_ms),
            "SIM_LLM_TOKEN_MS": str(self.token_ms),
            "SIM_EMBED_MS": str(self.embed_ms),
            "SIM_JITTER": str(self.jitter),
            "SIM_SEED": str(self.seed),
        }

    def settings(self) -> dict[str, Any]:
        return {
            "sim_llm_first_token_ms": self.first_token_ms,
            "sim_llm_token_ms": self.token_ms,
            "sim_embed_ms": self.embed_ms,
            "sim_jitter": self.jitter,
            "sim_seed": self.seed,
        }

    def call_ms(self, output_text: str) -> float:
        return self.first_token_ms + self.token_ms * pieces(output_text)

    def analysis_ms(self, message: str) -> float:
        return self.call_ms(analysis_json(message))

    def critical_path_ms(self, message: str, reply: str, *, write_embeds: int = 1) -> float:
        branches = max(self.analysis_ms(message), self.embed_ms)
        return branches + self.call_ms(reply) + self.embed_ms * write_embeds

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def analysis_json(message: str) -> str:
    """The offline model's TurnAnalysis answer for `message` (its length sets the call's wait)."""
    from prompts.chat import analysis_messages
    from services.llm.offline import _ANSWERS
    from state.schemas import TurnAnalysis

    return _ANSWERS[TurnAnalysis](analysis_messages(message)).model_dump_json()


def has_durable_fact(message: str) -> bool:
    from services.llm.lexicon import extract_durable_fact

    return extract_durable_fact(message) is not None


# Chat messages of the benchmarks: varied emotions, none stating a durable fact (so every turn
# embeds exactly one new memory and the critical path is the same shape for all).
MESSAGES = (
    "I finished my run this morning and I feel great",
    "Work was exhausting today and I could not focus",
    "My presentation tomorrow makes me a bit nervous",
    "I did a little bit of writing, not much",
    "Honestly I feel stuck with the project",
    "I am so happy, the first draft is done",
    "Nothing special happened today",
    "I skipped the gym again and I am annoyed with myself",
    "I am worried I will not finish the course in time",
    "Had a calm evening and read a few pages",
    "What should I focus on this week",
    "Everything on the list feels like too much today",
    "The meeting went better than I expected",
    "I am tired but I still want to make progress",
    "I practised guitar for twenty minutes",
    "Feeling a bit lonely tonight",
)


def message(i: int, nonce: str) -> str:
    """The i-th benchmark message, made unique by `nonce` (no cache hit, no memory merge)."""
    return f"{MESSAGES[i % len(MESSAGES)]} (note {nonce})"


def user_message(i: int, nonce: str) -> HumanMessage:
    return HumanMessage(message(i, nonce))
