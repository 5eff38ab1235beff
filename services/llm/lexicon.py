"""Word-lexicon emotion scoring and regex fact extraction for the offline model. Pure and
deterministic: the same text always yields the same scores, in every process."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Literal

from state.schemas import EMOTIONS

FactKind = Literal["fact", "preference", "stressor"]

# "word" weighs 1.0, "word:w" weighs w: more for strong words, less for mild or ambiguous ones.
_WORDS: dict[str, str] = {
    "joy": (
        "happy glad joy joyful great:0.8 good:0.5 amazing awesome wonderful fantastic excited "
        "exciting:0.9 thrilled:1.2 delighted:1.1 ecstatic:1.3 cheerful proud fun:0.7 "
        "celebrate:0.9 yay excellent brilliant:0.9 perfect:0.8 relieved:0.8 pleased:0.9 "
        "smile:0.7 laugh:0.7 won:0.8 win:0.6 success:0.8 accomplished:0.9 motivated:0.8 "
        "hopeful:0.8 optimistic:0.8 best:0.6 nice:0.6 enjoy:0.7 beautiful:0.7 calm:0.4 "
        "content:0.5 energy:0.8 energetic energized:1.1 pumped:0.9"
    ),
    "love": (
        "love adore:1.1 cherish affection caring:0.8 grateful:0.9 thankful:0.9 appreciate:0.8 "
        "sweet:0.6 lovely:0.7 darling:0.9 hug:0.7 kiss:0.8 romantic:0.9 fond:0.8 devoted:0.9 "
        "compassion:0.8 tender:0.6 beloved care:0.5"
    ),
    "surprise": (
        "surprised surprise:0.9 surprising:0.9 shocked:1.1 wow:0.9 whoa:0.9 omg:0.9 "
        "unexpected unexpectedly suddenly:0.6 astonished:1.2 amazed stunned:1.1 startled "
        "unbelievable:0.9"
    ),
    "sadness": (
        "sad sadness unhappy depressed:1.2 depressing hopeless:1.3 helpless:1.1 lonely:1.1 "
        "alone:0.6 cry crying cried tears:0.9 miserable:1.2 heartbroken:1.3 grief:1.2 "
        "grieving:1.2 lost:0.5 empty:0.8 hurt:0.8 tired:0.5 exhausted:0.7 drained:0.7 "
        "gloomy:0.9 disappointed:0.9 disappointing:0.8 upset:0.8 failure:0.9 failed:0.7 "
        "worthless:1.3 stuck:0.6 unmotivated:0.8 defeated regret:0.8 miss:0.6 awful:0.8 "
        "terrible:0.8 bad:0.6 worse:0.7 worst:0.8 down:0.4 devastated:1.3 pointless "
        "sorrow:1.1"
    ),
    "anger": (
        "angry anger mad:0.9 furious:1.3 annoyed:0.9 annoying:0.8 irritated:0.9 "
        "irritating:0.8 frustrated frustrating:0.9 hate rage:1.2 resent pissed:1.1 "
        "outraged:1.2 livid:1.3 unfair:0.8 bitter:0.8 hostile:0.9 infuriating:1.2 disgusted "
        "fed:0.3"
    ),
    "fear": (
        "afraid scared fear terrified:1.3 anxious anxiety worried worry:0.9 nervous:0.9 "
        "panic:1.1 dread:1.1 overwhelmed:0.9 stressed:0.9 stress:0.7 tense:0.7 uneasy:0.8 "
        "frightened:1.1 insecure:0.8 overthinking:0.7 uncertain:0.6 pressure:0.5 deadline:0.3 "
        "scary petrified:1.3"
    ),
}
_INDEX: dict[str, tuple[str, float]] = {
    word: (label, float(weight or 1.0))
    for label, words in _WORDS.items()
    for word, _, weight in (item.partition(":") for item in words.split())
}

_INTENSIFIERS = frozenset(
    "so very really extremely super incredibly totally deeply truly too absolutely utterly "
    "completely quite awfully terribly".split()
)
_NEGATORS = frozenset(
    "not no never cannot hardly barely without neither nor nothing dont cant wont isnt doesnt "
    "didnt wasnt arent".split()
)
_CLAUSE_BREAKS = frozenset(". ! ? , ; : but although though however".split())
_TOKEN = re.compile(r"[a-z]+(?:'[a-z]+)?|[.!?,;:]")


# "suffix:replacement" rules for regular inflections, tried in order (happiness -> happy).
_SUFFIX_RULES = "iness:y iest:y ier:y ily:y ied:y ies:y ness: ing:e ing: ed: es: ly: d: s:"
_SUFFIXES = [(suffix, repl) for suffix, _, repl in (r.partition(":") for r in _SUFFIX_RULES.split())]


def _lookup(token: str) -> tuple[str, float] | None:
    """Exact form first, then a few regular inflections (loves, worrying, happily, happiness)."""
    if token in _INDEX:
        return _INDEX[token]
    candidates = []
    for suffix, repl in _SUFFIXES:
        if token.endswith(suffix) and len(token) - len(suffix) >= 3:
            candidates.append(token[: -len(suffix)] + repl)
    return next((_INDEX[c] for c in candidates if c in _INDEX), None)


def _is_negator(token: str) -> bool:
    return token in _NEGATORS or token.endswith("n't")


def score_emotions(text: str) -> dict[str, float]:
    """Scores over the seven labels in [0, 1]. Emotion words add weight to their label (x1.5
    after an intensifier); a negator earlier in the same clause flips joy/love into sadness and
    cancels negative words ("not sad" is calm, not sad). Scores saturate as 1 - exp(-weight);
    neutral is what is left over, so text with no signal is neutral 1.0."""
    tokens = _TOKEN.findall(text.lower().replace("\u2019", "'"))
    raw = dict.fromkeys(EMOTIONS, 0.0)
    negated, boost = False, 1.0
    for token in tokens:
        if token in _CLAUSE_BREAKS:
            negated, boost = False, 1.0
            continue
        if _is_negator(token):
            negated = True
            continue
        if token in _INTENSIFIERS:
            boost = 1.5
            continue
        hit = _lookup(token)
        if hit is None:
            continue
        label, weight = hit
        if negated:
            if label in ("joy", "love"):
                raw["sadness"] += 0.8 * weight * boost
        else:
            raw[label] += weight * boost
        boost = 1.0  # an intensifier only boosts the next emotion word
    if "!" in tokens:  # exclamations amplify whatever is felt
        raw = {k: v * 1.2 for k, v in raw.items()}
    scores = {k: round(1.0 - math.exp(-v), 4) for k, v in raw.items() if k != "neutral"}
    scores["neutral"] = round(1.0 - max(scores.values()), 4)
    return {k: scores[k] for k in EMOTIONS}


def dominant(scores: dict[str, float]) -> str:
    """Highest label; ties resolve in EMOTIONS order, and no signal at all means neutral."""
    if not any(scores.get(k, 0.0) > 0 for k in EMOTIONS):
        return "neutral"
    return max(EMOTIONS, key=lambda k: scores.get(k, 0.0))


# --- durable facts ------------------------------------------------------------------------

_QUESTION_START = re.compile(
    r"^\s*(what|who|where|when|why|how|which|do you|did you|can you|could you|would you|"
    r"remember|do i|did i|am i|is my|are my)\b",
    re.IGNORECASE,
)
_ADVERB = r"(?:(?:really|so|very|pretty|quite|super|extremely|a bit|a little|kind of|totally)\s+)?"
_SPAN = r"([^.;!?]{2,120}?)"
_END = r"\s*(?:[.;!?]|,|\bbut\b|$)"
_STRESSOR_ADJ = r"(stressed(?: out)?|worried|anxious|overwhelmed|nervous|scared|afraid|panicking)"
_STRESSOR_VERB = r"(?:stress(?:es|ing)?|worr(?:ies|ying)|overwhelm(?:s|ing)?|scar(?:es|ing))"
_VAGUE_OBJECTS = frozenset("you it that this them him her so".split())
_TRANSIENT = frozenset("day week morning afternoon evening night weekend mood today".split())

_ADV2 = r"(?:(?:really|so|always|totally)\s+)?"
_STRESSOR_I = rf"\bi(?:'m| am| feel| get)\s+{_ADVERB}{_STRESSOR_ADJ}\s+(about|by|of|with)\s+{_SPAN}{_END}"
_STRESSOR_X = (
    rf"(?:^|[,.;]\s*|\band\s+)([a-z][^.;!?,]{{1,80}}?)\s+{_ADV2}(?:is\s+|are\s+)?"
    rf"{_STRESSOR_VERB}\s+me\b"
)
_LIKE = rf"\bi\s+{_ADVERB}(love|like|prefer|enjoy|hate|dislike|adore)\s+{_SPAN}{_END}"
_DISLIKE = rf"\bi\s+(?:do not|don't|dont)\s+{_ADVERB}(like|enjoy|love)\s+{_SPAN}{_END}"
_MY_X_IS = rf"\bmy\s+([a-z][\w' -]{{0,40}}?)\s+(is|are)\s+{_SPAN}{_END}"
_I_AM = rf"\bi(?:'m| am)\s+((?:an?\s+(?!bit\b|little\b|lot\b)|from\s+)[^.;!?]{{2,120}}?){_END}"
_I_WORK = rf"\bi\s+(work|live)\s+(as|at|in|for|from)\s+{_SPAN}{_END}"

_PATTERNS: list[tuple[FactKind, re.Pattern[str], Callable[[re.Match[str]], str | None]]] = [
    (
        "stressor",
        re.compile(_STRESSOR_I, re.I),
        lambda m: f"The user is {m[1].lower()} {m[2].lower()} {_third_person(m[3])}.",
    ),
    (
        "stressor",
        re.compile(_STRESSOR_X, re.I),
        lambda m: f"The user is stressed out by {_third_person(m[1])}.",
    ),
    (
        "preference",
        re.compile(_LIKE, re.I),
        lambda m: None if _vague(m[2]) else f"The user {m[1].lower()}s {_third_person(m[2])}.",
    ),
    (
        "preference",
        re.compile(_DISLIKE, re.I),
        lambda m: None if _vague(m[2]) else f"The user doesn't {m[1].lower()} {_third_person(m[2])}.",
    ),
    (
        "fact",
        re.compile(_MY_X_IS, re.I),
        lambda m: (
            None
            if m[1].split()[-1].lower() in _TRANSIENT
            else f"The user's {m[1]} {m[2].lower()} {_third_person(m[3])}."
        ),
    ),
    ("fact", re.compile(_I_AM, re.I), lambda m: f"The user is {_third_person(m[1])}."),
    (
        "fact",
        re.compile(_I_WORK, re.I),
        lambda m: f"The user {m[1].lower()}s {m[2].lower()} {_third_person(m[3])}.",
    ),
]

_PRONOUNS = [
    (re.compile(r"\bmyself\b", re.I), "themselves"),
    (re.compile(r"\bmy\b", re.I), "their"),
    (re.compile(r"\bmine\b", re.I), "theirs"),
    (re.compile(r"\bme\b", re.I), "them"),
    (re.compile(r"\bi'm\b|\bi am\b", re.I), "they are"),
    (re.compile(r"\bi\b", re.I), "they"),
]


def _third_person(span: str) -> str:
    for pattern, repl in _PRONOUNS:
        span = pattern.sub(repl, span)
    return span.strip(" ,")


def _is_question(text: str) -> bool:
    return text.rstrip().endswith("?") or bool(_QUESTION_START.match(text))


def extract_durable_fact(text: str) -> tuple[str, FactKind] | None:
    """A lasting fact, preference or stressor the user stated, as a sentence starting "The user"
    that keeps their own nouns (recall matches on shared words). Questions are never facts."""
    text = " ".join(text.replace("\u2019", "'").split())
    if not text or _is_question(text):
        return None
    for sentence in re.split(r"(?<=[.!?])\s+", text):
        if _is_question(sentence):
            continue
        found = _match(sentence)
        if found:
            return found
    return None


def _vague(obj: str) -> bool:
    return obj.split()[0].lower() in _VAGUE_OBJECTS


def _match(sentence: str) -> tuple[str, FactKind] | None:
    for kind, pattern, fmt in _PATTERNS:
        m = pattern.search(sentence)
        fact = fmt(m) if m else None
        if fact:
            return fact, kind
    return None
