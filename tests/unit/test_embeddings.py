"""services.embeddings: the offline hashing embedder and the LRU content-hash cache."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
from langchain_core.embeddings import Embeddings

from core.settings import Settings
from services.embeddings import CachedEmbeddings, OfflineEmbeddings

ROOT = Path(__file__).resolve().parents[2]
SISTER = "My sister's name is Maya"
QUESTION = "what is my sister's name"
UNRELATED = "I went running in the park"


def _dot(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


def _norm(v: list[float]) -> float:
    return math.sqrt(_dot(v, v))


# --- OfflineEmbeddings --------------------------------------------------------------------------


@pytest.mark.parametrize("dim", [8, 64, 256, 1536])
@pytest.mark.parametrize("text", [SISTER, QUESTION, UNRELATED, "", "   ", "what is it", "ÄÖÜ 🙂"])
def test_offline_unit_norm_and_dimension(dim: int, text: str) -> None:
    vec = OfflineEmbeddings(dim).embed_query(text)
    assert len(vec) == dim
    assert all(math.isfinite(v) for v in vec)
    assert _norm(vec) == pytest.approx(1.0)


def test_offline_deterministic_across_instances() -> None:
    a, b = OfflineEmbeddings(256), OfflineEmbeddings(256)
    texts = [SISTER, QUESTION, UNRELATED, ""]
    assert a.embed_documents(texts) == b.embed_documents(texts)
    assert a.embed_query(SISTER) == a.embed_documents([SISTER])[0]


def test_offline_deterministic_across_processes() -> None:
    # No Python `hash`: a different PYTHONHASHSEED must give the same vector.
    code = (
        "import json; from services.embeddings import OfflineEmbeddings; "
        f"print(json.dumps(OfflineEmbeddings(64).embed_query({SISTER!r})))"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == pytest.approx(OfflineEmbeddings(64).embed_query(SISTER))


def test_offline_shared_content_words_are_closer() -> None:
    e = OfflineEmbeddings(256)
    sister, question, unrelated = e.embed_documents([SISTER, QUESTION, UNRELATED])
    related = _dot(sister, question)
    assert related > 0.5
    assert related - _dot(sister, unrelated) > 0.4
    assert related - _dot(question, unrelated) > 0.4


def test_offline_case_and_inflection_insensitive() -> None:
    e = OfflineEmbeddings(256)
    assert e.embed_query("Running PARKS") == e.embed_query("running parks")
    # stop words are dropped and a plural "s" is stemmed away
    assert e.embed_query("the parks") == e.embed_query("park")
    assert e.embed_query("Maya's") == e.embed_query("maya")


def test_offline_empty_text_is_fixed_unit_vector() -> None:
    vec = OfflineEmbeddings(16).embed_query("")
    assert vec == [1.0] + [0.0] * 15
    # a stop-word-only text still embeds its words rather than collapsing to the empty vector
    assert OfflineEmbeddings(16).embed_query("what is it") != vec


async def test_offline_async_matches_sync() -> None:
    e = OfflineEmbeddings(32)
    assert await e.aembed_query(SISTER) == e.embed_query(SISTER)
    assert await e.aembed_documents([SISTER, ""]) == e.embed_documents([SISTER, ""])


# --- CachedEmbeddings ---------------------------------------------------------------------------


class CountingEmbeddings(Embeddings):
    def __init__(self) -> None:
        self.calls: list[list[str]] = []
        self._offline = OfflineEmbeddings(8)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        raise AssertionError("the cache must embed asynchronously")

    def embed_query(self, text: str) -> list[float]:
        raise AssertionError("the cache must embed asynchronously")

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        self.calls.append(list(texts))
        return self._offline.embed_documents(texts)


def _cached(size: int = 2) -> tuple[CachedEmbeddings, CountingEmbeddings]:
    inner = CountingEmbeddings()
    return CachedEmbeddings(inner, "counting", Settings(embedding_cache_size=size)), inner


async def test_cache_repeated_query_calls_inner_once() -> None:
    cache, inner = _cached()
    first = await cache.aembed_query(SISTER)
    second = await cache.aembed_query(SISTER)
    assert first == second == OfflineEmbeddings(8).embed_query(SISTER)
    assert inner.calls == [[SISTER]]
    assert (cache.hits, cache.misses) == (1, 1)


async def test_cache_deduplicates_within_a_batch_and_keeps_order() -> None:
    cache, inner = _cached(size=10)
    out = await cache.aembed_documents(["a", "b", "a", "c", "b"])
    assert inner.calls == [["a", "b", "c"]]
    ref = OfflineEmbeddings(8)
    assert out == [ref.embed_query(t) for t in ["a", "b", "a", "c", "b"]]
    assert (cache.hits, cache.misses) == (0, 3)


async def test_cache_mixed_batch_only_embeds_missing() -> None:
    cache, inner = _cached(size=10)
    await cache.aembed_documents(["a", "b"])
    out = await cache.aembed_documents(["c", "a", "d", "b"])
    assert inner.calls == [["a", "b"], ["c", "d"]]
    ref = OfflineEmbeddings(8)
    assert out == [ref.embed_query(t) for t in ["c", "a", "d", "b"]]
    assert (cache.hits, cache.misses) == (2, 4)


async def test_cache_all_hits_does_not_call_inner() -> None:
    cache, inner = _cached(size=10)
    await cache.aembed_documents(["a", "b"])
    await cache.aembed_documents(["b", "a"])
    assert len(inner.calls) == 1


async def test_cache_empty_batch() -> None:
    cache, inner = _cached()
    assert await cache.aembed_documents([]) == []
    assert inner.calls == []
    assert (cache.hits, cache.misses) == (0, 0)


async def test_cache_evicts_least_recently_used() -> None:
    cache, inner = _cached(size=2)
    await cache.aembed_query("a")
    await cache.aembed_query("b")
    await cache.aembed_query("a")  # hit: "a" is now more recent than "b"
    await cache.aembed_query("c")  # over size: evicts "b", not "a"
    assert inner.calls == [["a"], ["b"], ["c"]]
    await cache.aembed_query("a")
    await cache.aembed_query("c")
    assert inner.calls == [["a"], ["b"], ["c"]]
    await cache.aembed_query("b")  # was evicted
    assert inner.calls[-1] == ["b"]
    assert (cache.hits, cache.misses) == (3, 4)


async def test_cache_batch_larger_than_size_still_returns_everything() -> None:
    cache, inner = _cached(size=2)
    out = await cache.aembed_documents(["a", "b", "c", "d"])
    ref = OfflineEmbeddings(8)
    assert out == [ref.embed_query(t) for t in "abcd"]
    await cache.aembed_documents(["c", "d"])  # the two most recent are kept
    assert len(inner.calls) == 1
    await cache.aembed_query("a")
    assert inner.calls[-1] == ["a"]


async def test_cache_size_zero_caches_nothing() -> None:
    cache, inner = _cached(size=0)
    await cache.aembed_query("a")
    await cache.aembed_query("a")
    assert inner.calls == [["a"], ["a"]]
    assert (cache.hits, cache.misses) == (0, 2)


def test_cache_key_is_sha256_of_text() -> None:
    assert CachedEmbeddings.key("") == ("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    assert CachedEmbeddings.key("a") != CachedEmbeddings.key("A")


def test_cache_sync_methods_raise() -> None:
    cache, _ = _cached()
    with pytest.raises(NotImplementedError):
        cache.embed_query("a")
    with pytest.raises(NotImplementedError):
        cache.embed_documents(["a"])
