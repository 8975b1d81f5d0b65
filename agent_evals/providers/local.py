"""A deterministic offline stand-in for a model: the nearest few-shot example.

This is NOT a language model and does not understand anything. It exists so the
demo and the pipeline tests run with no API key and no model server, while
still reacting to prompt edits the way a gate needs to see: it answers from the
rendered prompt itself, so editing the prompt changes its answers.

How it answers one request:

- The rendered messages are read as optional system messages (ignored), few-shot
  examples (each user message followed by an assistant message) and the last
  user message, which is the input.
- The examples are grouped by their label: the answer text for text output, or
  the label-like values (short strings of at most three words in every example)
  for JSON output. Inputs are compared as TF-IDF vectors of words and word pairs,
  each term weighted by how concentrated it is in one label's examples (so
  words every label uses, and product names spread over several labels, count
  little). The input picks the label whose centroid is most cosine-similar to
  it, then the most similar example of that label. Ties go to the earlier label
  and example, in prompt order.
- Text output: the chosen example's answer, verbatim. JSON output (when the
  examples' answers are JSON objects): an object with the examples' keys in
  their order; label-like values and non-string values come from the chosen
  example; free-text values are an extractive summary of the input (its most
  informative sentences by TF-IDF weight), at most the median word count the
  examples use for that key.
- No examples at all: an extractive summary of the input, as text.

Temperature, seed and every other sampling parameter are ignored: the same
request always gets the same answer. The vectorizer is fitted once per distinct
example set and cached, so a run of a thousand cases fits it once.
scikit-learn and numpy are imported on first use, not on import.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import re
import statistics
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from agent_evals.providers.base import Completion, Usage

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from agent_evals.models import Message
    from agent_evals.providers import ProviderSettings
    from agent_evals.providers.base import ChatRequest

__all__ = ["MODEL_NAME", "Example", "LocalProvider", "split_messages", "word_count"]

MODEL_NAME = "local-tfidf-knn"

DEFAULT_SUMMARY_WORDS = 30
"""Word budget of the summary when there are no examples to take one from."""

LABEL_MAX_WORDS = 3
"""A JSON value is a label when it is a string of at most this many words in every example."""

_MIN_SENTENCE_WORDS = 3
# Fragments shorter than this ("email", "Acme Pro") are header values, not sentences worth quoting.

NGRAM_RANGE = (1, 2)
"""Word n-grams compared: (1, 1) is words; (1, 2) adds word pairs."""

_CACHE_SIZE = 32
_RATE_PRIOR = 0.5  # Jeffreys prior for a term's rate in a label's examples
_WEIGHT_FLOOR = 0.1  # so an input of common words only still leans somewhere

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[]?[A-Z0-9])")
_WORD = re.compile(r"(?u)\b\w\w+\b")  # TfidfVectorizer's default token pattern
# "Subject: ..." and "Order: ..." prefixes are template scaffolding, not content.
_HEADER = re.compile(r"^[A-Z][A-Za-z]{0,19}(?: [A-Za-z]{1,19})?:\s+")


@dataclass(frozen=True, slots=True)
class Example:
    """One few-shot example: a user message and the assistant answer after it."""

    input: str
    answer: str


def word_count(text: str) -> int:
    """Whitespace-separated words: the token count this provider reports."""
    return len(text.split())


def split_messages(messages: Sequence[Message]) -> tuple[list[Example], str]:
    """Split rendered messages into few-shot examples and the input.

    Args:
        messages: the rendered conversation.

    Returns:
        The (user, assistant) pairs before the last user message, in order, and
        the last user message's text ("" when there is none). System messages
        and unpaired messages are not examples.
    """
    last_user = max((i for i, m in enumerate(messages) if m.role == "user"), default=-1)
    examples = [
        Example(input=prev.content, answer=cur.content)
        for prev, cur in itertools.pairwise(messages[:last_user])
        if prev.role == "user" and cur.role == "assistant"
    ]
    return examples, messages[last_user].content if last_user >= 0 else ""


def _sentences(text: str) -> list[str]:
    out: list[str] = []
    for line in text.splitlines():
        line = _HEADER.sub("", line.strip())
        out.extend(s.strip() for s in _SENTENCE_END.split(line) if s.strip())
    return out


def _tokens(text: str) -> list[str]:
    return _WORD.findall(text.lower())


@dataclass(frozen=True, slots=True)
class Idf:
    """Inverse document frequencies of terms, and the analyzer that makes the terms."""

    analyze: Callable[[str], list[str]]
    idf: dict[str, float]
    unseen: float
    """The weight of a term the corpus never saw: as rare as the rarest term it did see."""

    @classmethod
    def of(cls, vectorizer: Any | None) -> Idf:
        """The idf a fitted TfidfVectorizer learned (None: every term weighs 1)."""
        if vectorizer is None:
            return cls(analyze=_tokens, idf={}, unseen=1.0)
        idf = dict(zip(vectorizer.get_feature_names_out().tolist(), vectorizer.idf_.tolist(), strict=True))
        return cls(analyze=vectorizer.build_analyzer(), idf=idf, unseen=max(idf.values(), default=1.0))

    def __call__(self, term: str) -> float:
        return self.idf.get(term, self.unseen)


def extractive_summary(text: str, budget: int, idf: Idf) -> str:
    """The input's most informative sentences, in input order, within `budget` words.

    A sentence scores the TF-IDF weight of its terms, each counted by how often
    the whole input uses it (so the product a ticket keeps naming counts), divided
    by the square root of its number of terms (so a long sentence does not win on
    length alone). The best sentence is always kept, cut to the budget if it is
    too long; the next best are added while they fit.
    """
    sentences = list(dict.fromkeys(_sentences(text)))
    if not sentences or budget <= 0:
        return ""
    in_text = Counter(idf.analyze(text))

    def score(sentence: str) -> float:
        terms = set(idf.analyze(sentence))
        mass = sum(idf(t) * (1.0 + math.log(in_text[t] or 1)) for t in terms)
        return mass / math.sqrt(len(terms) or 1)

    candidates = [s for s in sentences if word_count(s) >= _MIN_SENTENCE_WORDS] or sentences
    # Stable sort: equal scores keep input order, so the result is deterministic.
    ranked = sorted(candidates, key=score, reverse=True)
    best = ranked[0]
    if word_count(best) > budget:
        return " ".join(best.split()[:budget]).rstrip(",;:-") + "..."
    chosen = {best}
    used = word_count(best)
    for sentence in ranked[1:]:
        if used + word_count(sentence) <= budget:
            chosen.add(sentence)
            used += word_count(sentence)
    kept = [s for s in sentences if s in chosen]
    # Subject lines have no full stop; give every sentence but the last one.
    return " ".join([*(s if s[-1] in ".!?" else s + "." for s in kept[:-1]), kept[-1]])


def _new_vectorizer() -> Any:
    from sklearn.feature_extraction.text import TfidfVectorizer

    # Sublinear tf: a word repeated in one ticket counts less than a new word. No
    # stop word list: "how do I", "can't" and "would" carry the intent of a ticket,
    # and the label-concentration weights already silence words every label uses.
    return TfidfVectorizer(ngram_range=NGRAM_RANGE, sublinear_tf=True, lowercase=True)


def _json_object(text: str) -> dict[str, Any] | None:
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def _is_label(value: Any) -> bool:
    return isinstance(value, str) and 0 < word_count(value) <= LABEL_MAX_WORDS


@dataclass(frozen=True, slots=True)
class _JsonShape:
    """What the examples' JSON answers look like: keys, which are labels, word budgets."""

    answers: list[dict[str, Any]]
    keys: list[str]
    label_keys: list[str]
    budgets: dict[str, int]
    """Free-text keys and their word budget (the median the examples use)."""

    @classmethod
    def of(cls, examples: Sequence[Example]) -> _JsonShape | None:
        answers = [_json_object(e.answer) for e in examples]
        if not answers or any(a is None for a in answers):
            return None
        parsed = [a for a in answers if a is not None]
        keys = list(dict.fromkeys(k for a in parsed for k in a))
        label_keys: list[str] = []
        budgets: dict[str, int] = {}
        for key in keys:
            values = [a[key] for a in parsed if key in a]
            strings = [v for v in values if isinstance(v, str)]
            if not strings:
                continue
            if all(_is_label(v) for v in strings):
                label_keys.append(key)
            else:
                budgets[key] = max(1, round(statistics.median(word_count(v) for v in strings)))
        return cls(answers=parsed, keys=keys, label_keys=label_keys, budgets=budgets)

    def label_of(self, index: int) -> str:
        answer = self.answers[index]
        return json.dumps([answer.get(k) for k in self.label_keys], ensure_ascii=False)


@dataclass(frozen=True, slots=True)
class _Fitted:
    """A vectorizer fitted on one example set, with its matrices."""

    vectorizer: Any
    """The fitted TfidfVectorizer; None when the examples have no words at all."""
    term_weights: npt.NDArray[np.float64]
    """Per vocabulary term: how much it tells the labels apart (see `_label_concentration`)."""
    matrix: npt.NDArray[np.float64]
    """One L2-normalised, term-weighted TF-IDF row per example."""
    groups: list[list[int]]
    """Example indices per label, labels in order of first appearance."""
    centroids: npt.NDArray[np.float64]
    """One L2-normalised centroid row per group."""
    shape: _JsonShape | None
    idf: Idf
    """For the free-text values: the examples' idf."""

    @classmethod
    def fit(cls, examples: list[Example], json_output: bool) -> _Fitted:
        import numpy as np

        shape = _JsonShape.of(examples) if json_output else None
        labels = [shape.label_of(i) if shape else e.answer.strip() for i, e in enumerate(examples)]
        by_label: dict[str, list[int]] = {}
        for index, label in enumerate(labels):
            by_label.setdefault(label, []).append(index)
        groups = list(by_label.values())
        vectorizer = _new_vectorizer()
        try:
            tfidf = np.asarray(
                vectorizer.fit_transform([e.input for e in examples]).toarray(), dtype=np.float64
            )
        except ValueError:
            # No example input has a word in it: nothing to compare, every input gets the first example.
            vectorizer = None
            tfidf = np.zeros((len(examples), 1), dtype=np.float64)
        term_weights = _label_concentration(tfidf > 0, groups)
        matrix = _normalize_rows(tfidf * term_weights)
        centroids = _normalize_rows(np.vstack([matrix[g].mean(axis=0) for g in groups]))
        return cls(vectorizer, term_weights, matrix, groups, centroids, shape, Idf.of(vectorizer))

    def nearest(self, text: str) -> int:
        """Index of the chosen example: best group by centroid, then best example in it."""
        import numpy as np

        if self.vectorizer is None:
            return 0
        x = np.asarray(self.vectorizer.transform([text]).toarray()[0], dtype=np.float64) * self.term_weights
        # argmax returns the first maximum: ties go to the earlier label and example.
        group = self.groups[int(np.argmax(self.centroids @ x))]
        return group[int(np.argmax(self.matrix[group] @ x))]


def _normalize_rows(matrix: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    import numpy as np

    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return np.asarray(np.divide(matrix, norms, out=np.zeros_like(matrix), where=norms > 0), dtype=np.float64)


def _label_concentration(present: npt.NDArray[np.bool_], groups: list[list[int]]) -> npt.NDArray[np.float64]:
    """Weight each term by how concentrated it is in one label: 1 - normalised entropy.

    With a dozen examples, plain TF-IDF lets incidental words decide: a product
    name used in one refund and one billing example pulls every ticket about that
    product towards both. A term found in one label's examples only weighs about
    1; a term spread evenly over every label ("the", "please") weighs the floor.

    The rate of a term in a label is estimated from two or three examples, so it
    is smoothed (Jeffreys: add half an example with and half without the term);
    without that, one chance word decides the weight, and removing one label's
    examples reshuffles every other label's answers.
    """
    import numpy as np

    if len(groups) < 2:
        return np.ones(present.shape[1], dtype=np.float64)
    rate = np.vstack([(present[g].sum(axis=0) + _RATE_PRIOR) / (len(g) + 2 * _RATE_PRIOR) for g in groups])
    share = rate / rate.sum(axis=0, keepdims=True)
    entropy = -(share * np.log(share)).sum(axis=0) / math.log(len(groups))
    concentration = np.clip(1.0 - entropy, 0.0, 1.0)
    return np.asarray(_WEIGHT_FLOOR + (1.0 - _WEIGHT_FLOOR) * concentration, dtype=np.float64)


def _summary_without_examples(text: str) -> str:
    """Extractive summary when there are no examples: idf over the input's own sentences."""
    vectorizer = _new_vectorizer()
    try:
        vectorizer.fit(_sentences(text) or [text])
    except ValueError:
        # Not a single word in the input: nothing to weigh, every term counts 1.
        vectorizer = None
    return extractive_summary(text, DEFAULT_SUMMARY_WORDS, Idf.of(vectorizer))


def _examples_key(examples: Sequence[Example], json_output: bool) -> str:
    blob = json.dumps([json_output, [[e.input, e.answer] for e in examples]], ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class LocalProvider:
    """The `local` provider: a deterministic TF-IDF nearest-example stand-in, not a language model.

    See the module docstring for how it answers. `Completion.model` is
    `local-tfidf-knn` whatever model name the prompt asks for.
    """

    def __init__(self, settings: ProviderSettings) -> None:
        self.name = settings.name
        self.settings = settings
        # Fitted example sets by hash of their messages; a run reuses one prompt's set.
        self._fitted: dict[str, _Fitted] = {}

    def _fit(self, examples: list[Example], json_output: bool) -> _Fitted:
        key = _examples_key(examples, json_output)
        fitted = self._fitted.get(key)
        if fitted is None:
            if len(self._fitted) >= _CACHE_SIZE:
                del self._fitted[next(iter(self._fitted))]
            fitted = self._fitted[key] = _Fitted.fit(examples, json_output)
        return fitted

    def answer(self, request: ChatRequest) -> str:
        """The answer text for `request` (what `complete` returns, synchronously)."""
        examples, text = split_messages(request.messages)
        if not examples:
            return _summary_without_examples(text)
        fitted = self._fit(examples, request.output.format == "json")
        chosen = fitted.nearest(text)
        shape = fitted.shape
        if shape is None:
            return examples[chosen].answer
        picked = shape.answers[chosen]
        out: dict[str, Any] = {}
        for key in shape.keys:
            if key in shape.budgets:
                out[key] = extractive_summary(text, shape.budgets[key], fitted.idf)
            elif key in picked:
                out[key] = picked[key]
        return json.dumps(out, ensure_ascii=False)

    async def complete(self, request: ChatRequest) -> Completion:
        """Answer `request` from its own examples.

        `usage` approximates tokens as whitespace-separated words: every message
        of the request for input, the answer for output.
        """
        text = self.answer(request)
        usage = Usage(
            input_tokens=sum(word_count(m.content) for m in request.messages),
            output_tokens=word_count(text),
        )
        return Completion(text=text, usage=usage, model=MODEL_NAME, finish_reason="stop")

    async def aclose(self) -> None:
        """Nothing to release: no connections, no files."""
