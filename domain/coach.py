"""The talk-track coach (PRODUCT.md §1.5): three distinct talk tracks for a customer, each with its source.

Candidates are the admin's library (title, text, industry, stage tags) and the text of past
communications with customers whose deals were won. Each candidate is scored as

    score = bm25(query, title + text) / max bm25 over the candidates    (0 … 1; 0 when all are 0)
          + INDUSTRY_BOOST  when it is about the customer's industry
          + STAGE_BOOST     when it is tagged with (or was said in) the opportunity's stage

- the query is the jieba tokens of the stage name and the customer's last message;
- "about the industry": its industry tag equals the customer's, or one contains the other
  (医疗 ~ 医疗器械), or its title/text mentions the customer's industry. The industry is a boost and
  not a query term, so a track that is tagged *and* mentions it is not counted twice;
- BM25 is Okapi BM25 (k1 = 1.5, b = 0.75, idf = ln(1 + (N − n + 0.5) / (n + 0.5))) over jieba tokens.

Candidates are taken best first (ties keep input order, library before communications), skipping
any whose text is a near duplicate of one already taken: character-bigram Jaccard similarity >=
``DUPLICATE_SIMILARITY``.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import jieba

from domain.stages import DEFAULT_PIPELINE, Pipeline, stage_name

jieba.setLogLevel(logging.WARNING)  # jieba logs its dictionary loading at DEBUG to stderr

INDUSTRY_BOOST = 1.0
STAGE_BOOST = 0.5
DUPLICATE_SIMILARITY = 0.6
BM25_K1 = 1.5
BM25_B = 0.75
SUGGESTIONS = 3

# Source labels shown to the rep (domain may not import the bot's message catalog).
_FROM_LIBRARY = "话术库《{title}》"
_FROM_WON_DEAL = "赢单客户 {customer} 的沟通记录"
_STOPWORDS = frozenset("我们 你们 他们 她们 它们 这个 那个 一个 一下 什么 怎么 可以 能不能 是不是 已经 还是 就是 然后 但是 因为 所以".split())


@dataclass(frozen=True)
class TalkTrack:
    """A script from the admin's library; empty ``stages`` / None ``industry`` mean "any"."""

    title: str
    text: str
    industry: str | None = None
    stages: tuple[str, ...] = ()


@dataclass(frozen=True)
class WonCommunication:
    """What a rep said to a customer whose deal was later won, and the stage it was said in."""

    customer: str
    text: str
    industry: str | None = None
    stage: str | None = None


@dataclass(frozen=True)
class TrackSuggestion:
    """One suggested talk track and where it came from (``source`` is the label shown to the rep)."""

    text: str
    source: str
    score: float


def tokenize(text: str) -> list[str]:
    """jieba tokens of ``text``, lower-cased; no punctuation, stopwords or one-character tokens.

    Single characters (能, 问, 先, 时 …) are mostly function words in Chinese and only add noise.
    """
    return [
        t for t in (w.strip().lower() for w in jieba.lcut(text))
        if len(t) > 1 and any(ch.isalnum() for ch in t) and t not in _STOPWORDS
    ]


def bm25_scores(query: Sequence[str], documents: Sequence[Sequence[str]]) -> list[float]:
    """Okapi BM25 of each tokenized document for the tokenized query (see module docstring)."""
    n_docs = len(documents)
    if n_docs == 0:
        return []
    avg_len = sum(len(d) for d in documents) / n_docs or 1.0
    doc_freq: Counter[str] = Counter()
    for doc in documents:
        doc_freq.update(set(doc))
    scores = []
    for doc in documents:
        tf = Counter(doc)
        norm = BM25_K1 * (1 - BM25_B + BM25_B * len(doc) / avg_len)
        score = 0.0
        for term in query:
            f = tf.get(term, 0)
            if f:
                idf = math.log(1 + (n_docs - doc_freq[term] + 0.5) / (doc_freq[term] + 0.5))
                score += idf * f * (BM25_K1 + 1) / (f + norm)
        scores.append(score)
    return scores


def _bigrams(text: str) -> set[str]:
    chars = [ch for ch in text.lower() if ch.isalnum()]
    return {a + b for a, b in zip(chars, chars[1:], strict=False)} or set(chars)


def near_duplicate(a: str, b: str) -> bool:
    """True when two texts share most character bigrams (Jaccard >= ``DUPLICATE_SIMILARITY``)."""
    x, y = _bigrams(a), _bigrams(b)
    if not x or not y:
        return x == y
    return len(x & y) / len(x | y) >= DUPLICATE_SIMILARITY


def industry_matches(candidate: str | None, customer: str | None) -> bool:
    """Equal industries, or one names the other (医疗 ~ 医疗器械); a missing industry matches nothing."""
    a, b = (candidate or "").strip(), (customer or "").strip()
    return bool(a and b) and (a in b or b in a)


@dataclass(frozen=True)
class _Candidate:
    text: str
    source: str
    document: str
    industry: str | None
    stages: tuple[str, ...]


def suggest_talk_tracks(
    library: Sequence[TalkTrack],
    won_communications: Sequence[WonCommunication],
    *,
    industry: str | None,
    stage: str | None,
    last_message: str = "",
    limit: int = SUGGESTIONS,
    pipeline: Pipeline = DEFAULT_PIPELINE,
) -> list[TrackSuggestion]:
    """Up to ``limit`` distinct talk tracks for a customer in ``industry`` at stage key ``stage``, best first."""
    candidates = [
        _Candidate(t.text.strip(), _FROM_LIBRARY.format(title=t.title), f"{t.title} {t.text}",
                   t.industry, t.stages)
        for t in library
    ] + [
        _Candidate(c.text.strip(), _FROM_WON_DEAL.format(customer=c.customer), c.text, c.industry,
                   (c.stage,) if c.stage else ())
        for c in won_communications
    ]
    candidates = [c for c in candidates if c.text]
    query = tokenize(" ".join(p for p in (stage and stage_name(stage, pipeline), last_message) if p))
    documents = [tokenize(c.document) for c in candidates]
    relevance = bm25_scores(query, documents)
    industry_word = (industry or "").strip()
    top = max(relevance, default=0.0)

    ranked = []
    for i, cand in enumerate(candidates):
        score = relevance[i] / top if top > 0 else 0.0
        if industry_matches(cand.industry, industry) or (industry_word and industry_word in cand.document):
            score += INDUSTRY_BOOST
        if stage is not None and stage in cand.stages:
            score += STAGE_BOOST
        ranked.append((score, i, cand))
    ranked.sort(key=lambda t: (-t[0], t[1]))

    chosen: list[TrackSuggestion] = []
    for score, _, cand in ranked:
        if len(chosen) >= limit:
            break
        if any(near_duplicate(cand.text, s.text) for s in chosen):
            continue
        chosen.append(TrackSuggestion(cand.text, cand.source, round(score, 4)))
    return chosen
