"""Embedders: OpenAI when configured, otherwise an offline hashing embedder that needs no
download. Both are wrapped in a content-hash cache (seed: cache expensive operations)."""

from __future__ import annotations

import hashlib
import math
import re
from collections import OrderedDict

from langchain_core.embeddings import Embeddings

from core.settings import Settings
from services.llm.retry import with_retry

_WORD = re.compile(r"[a-z0-9]+")
_STOP = frozenset(
    "a an the and or but of to in on at for with is are was were be been am i me my you your "
    "it its this that do does did what who how when where why can could would should will "
    "about as by from so very just really".split()
)


def _stem(word: str) -> str:
    for suffix in ("ing", "ed", "es", "s"):
        if len(word) > len(suffix) + 2 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


def _trigrams(word: str) -> list[tuple[str, float]]:
    padded = f"#{word}#"
    return [(f"c:{padded[i : i + 3]}", 0.3) for i in range(len(padded) - 2)]


class OfflineEmbeddings(Embeddings):
    """Feature hashing of stemmed content words (weight 1) and their character trigrams
    (weight 0.3) into a signed, L2-normalised vector: texts that share words are close, which is
    what memory recall needs offline. Deterministic across processes (no Python `hash`)."""

    name = "offline-hash-v1"

    def __init__(self, dim: int) -> None:
        self.dim = dim
        # word -> its hashed slots (word feature, then its trigrams): words repeat across texts,
        # so each is hashed once per process (bounded; cleared when full).
        self._slots: dict[str, tuple[tuple[int, float], tuple[tuple[int, float], ...]]] = {}

    def _slot(self, feat: str, weight: float) -> tuple[int, float]:
        h = int.from_bytes(hashlib.blake2b(feat.encode(), digest_size=8).digest(), "big")
        return h % self.dim, weight if (h >> 63) & 1 else -weight

    def _word_slots(self, word: str) -> tuple[tuple[int, float], tuple[tuple[int, float], ...]]:
        hit = self._slots.get(word)
        if hit is None:
            if len(self._slots) >= 65_536:
                self._slots.clear()
            hit = self._slots[word] = (
                self._slot(f"w:{word}", 1.0),
                tuple(self._slot(f, w) for f, w in _trigrams(word)),
            )
        return hit

    def _embed(self, text: str) -> list[float]:
        words = [_stem(w) for w in _WORD.findall(text.lower().replace("'s", ""))]
        content = [w for w in words if w not in _STOP] or words
        slots = [self._word_slots(w) for w in content]
        vec = [0.0] * self.dim
        # Every word's feature, then every trigram, in text order (the vectors never change).
        for (i, v), _ in slots:
            vec[i] += v
        for _, trigrams in slots:
            for i, v in trigrams:
                vec[i] += v
        norm = math.sqrt(sum(v * v for v in vec))
        if norm == 0:
            vec[0], norm = 1.0, 1.0  # empty text: a fixed unit vector rather than NaNs
        return [v / norm for v in vec]

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self._embed(t) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return self._embed(text)

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.embed_documents(texts)

    async def aembed_query(self, text: str) -> list[float]:
        return self._embed(text)


class CachedEmbeddings(Embeddings):
    """LRU cache keyed by the SHA-256 of the text, in front of any embedder (with retries)."""

    def __init__(self, inner: Embeddings, name: str, settings: Settings) -> None:
        self.inner = inner
        self.name = name
        self.settings = settings
        self.size = settings.embedding_cache_size
        self._cache: OrderedDict[str, list[float]] = OrderedDict()
        self.hits = 0
        self.misses = 0

    @staticmethod
    def key(text: str) -> str:
        return hashlib.sha256(text.encode()).hexdigest()

    def _get(self, text: str) -> list[float] | None:
        k = self.key(text)
        vec = self._cache.get(k)
        if vec is not None:
            self._cache.move_to_end(k)
            self.hits += 1
        return vec

    def _put(self, text: str, vec: list[float]) -> None:
        if self.size <= 0:
            return
        self._cache[self.key(text)] = vec
        if len(self._cache) > self.size:
            self._cache.popitem(last=False)

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        found = {t: v for t in set(texts) if (v := self._get(t)) is not None}
        missing = [t for t in dict.fromkeys(texts) if t not in found]
        if missing:
            self.misses += len(missing)
            vecs = await with_retry(self.settings, "embed", lambda: self.inner.aembed_documents(missing))
            for t, v in zip(missing, vecs, strict=True):
                self._put(t, v)
                found[t] = v
        return [found[t] for t in texts]

    async def aembed_query(self, text: str) -> list[float]:
        return (await self.aembed_documents([text]))[0]

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        raise NotImplementedError("the service embeds asynchronously; use aembed_documents")

    def embed_query(self, text: str) -> list[float]:
        raise NotImplementedError("the service embeds asynchronously; use aembed_query")


def build_embeddings(settings: Settings) -> CachedEmbeddings:
    if settings.uses_openai:
        from langchain_openai import OpenAIEmbeddings
        from pydantic import SecretStr

        inner: Embeddings = OpenAIEmbeddings(
            model=settings.embedding_model,
            dimensions=settings.embedding_dim,
            openai_api_key=SecretStr(settings.openai_api_key or "not-needed"),
            openai_api_base=settings.openai_base_url,
            max_retries=0,
            request_timeout=settings.llm_timeout_s,
            check_embedding_ctx_length=False,
        )
        return CachedEmbeddings(inner, f"openai:{settings.embedding_model}", settings)
    offline = OfflineEmbeddings(settings.embedding_dim)
    if settings.sim_embed_ms:
        # Benchmarks: a simulated remote embedder (seeded jitter); same vectors, same name.
        import asyncio
        import random

        rng, jitter = random.Random(settings.sim_seed), settings.sim_jitter
        wait_s = settings.sim_embed_ms / 1000

        class SimulatedOfflineEmbeddings(OfflineEmbeddings):
            async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
                await asyncio.sleep(wait_s * (1.0 + jitter * (2.0 * rng.random() - 1.0)))
                return self.embed_documents(texts)

            async def aembed_query(self, text: str) -> list[float]:
                return (await self.aembed_documents([text]))[0]

        offline = SimulatedOfflineEmbeddings(settings.embedding_dim)
    return CachedEmbeddings(offline, OfflineEmbeddings.name, settings)
