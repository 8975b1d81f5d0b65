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

Tool mode: when the request offers tools and the system messages hold a plan
that names at least one of them, the stand-in acts as an agent instead, one
model step per request (the agent loop sends the conversation back with the
tools' answers each time):

- The plan is the numbered lines of the system messages (`1.`, `2)`), in order.
  A line is a step when it names a tool the request offers (the tool's name as
  a word); lines naming none ("4. Answer with the decision.") are not steps.
- A step calls the first tool its line names; the others on the line are only
  mentioned ("Call lookup_policy with the category from lookup_order."). A line
  that says "at the same time" or "in parallel" calls every tool it names, in
  one step (a parallel call).
- A line starting "If" is conditional: "If lookup_policy says `eligible` is
  true, call issue_refund ...; otherwise call escalate_to_human ...". The
  condition is the text before the first comma (or "then"): a field in
  backticks (a dotted path into a tool's result), optionally `is VALUE` or
  `is not VALUE` (a JSON word: true, false, null, a number, else a string;
  without one: the field is truthy), checked against the latest result that
  has the field, from the tool the condition names if it names one. The call
  after "otherwise" (or "else") is made when the condition fails; without one,
  the step is skipped. An "If" line with no field in backticks is not a
  condition the stand-in can check: it makes the call before "otherwise".
  A condition on a field no tool result has is taken as met: like an eager
  model, the stand-in does not hold back for a check it never made (drop the
  plan's policy lookup and it refunds anyway). But when the condition names a
  tool that was called and failed (or did not say), the condition fails: a
  check that went wrong is not a check that passed.
- Where it is: the calls since the last user message are matched against the
  plan, step by step; the first step not yet made is made next. When every
  step is done (or the conversation's calls stop following the plan), it
  answers.
- Arguments: each property of the tool's parameters schema, by its name, from
  (1) the tool results so far, latest first (the first key of that name,
  searched depth first), (2) the arguments of earlier calls, latest first, (3)
  the user messages, latest first, when the property has a `pattern` (its first
  match; anchors dropped), (4) the case's variables (`ChatRequest.vars`, by key,
  depth first). A value of the wrong JSON type is converted where that is
  lossless (a digit string for an integer, a number for a string as its JSON
  text; a boolean is never a number); a property with no value is left out. The text of a step line ("with the order id") is not read.
- The answer, when the plan is done. JSON output with a schema: an object with
  the schema's properties in order, each by its name from the same sources as
  arguments (a value outside the property's `enum` is not taken); an enum
  property no source names takes the value that names the last tool called
  whose name has it as a word (`refund` for `issue_refund`); a required string
  still without a value gets an extractive summary of the user's message; other
  properties are left out. JSON without a schema: the last tool result (an
  object), else `{"result": ...}`. Text output: "Called a, b." and the last
  result as JSON.
- The completion has the HTTP providers' shape: tool calls with ids
  (`call_1`, `call_2`, ... numbered over the whole conversation), empty text
  and finish reason `tool_calls` on a tool step; the answer and `stop` at the
  end. With `tool_choice: none`, or no plan, it answers as it does without
  tools; other tool choices follow the plan (the stand-in never calls a tool
  its plan does not name).

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

from agent_evals import _json
from agent_evals._regex import PatternError, PatternTimeout, compile_pattern
from agent_evals.providers.base import Completion, ToolCall, Usage

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from agent_evals.models import Message, ToolSpec
    from agent_evals.providers import ProviderSettings
    from agent_evals.providers.base import ChatRequest

__all__ = [
    "MODEL_NAME",
    "Condition",
    "Example",
    "LocalProvider",
    "PlanStep",
    "parse_plan",
    "split_messages",
    "word_count",
]

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
        value = _json.loads(text)
    except ValueError:
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


# --- tool mode ---------------------------------------------------------------------

_PLAN_LINE = re.compile(r"^\s*\d{1,3}[.)]\s+(?P<text>\S.*)$")
_PARALLEL = re.compile(r"\b(?:at the same time|in parallel)\b", re.IGNORECASE)
_IF = re.compile(r"^if\b(?P<condition>[^,]*?)(?:,|\bthen\b)(?P<then>.*)$", re.IGNORECASE | re.DOTALL)
_OTHERWISE = re.compile(r"\b(?:otherwise|else)\b", re.IGNORECASE)
_FIELD = re.compile(
    r"`(?P<path>[^`\s]+)`(?:\s+is\s+(?P<negated>not\s+)?(?P<value>`[^`]*`|\"[^\"]*\"|'[^']*'|[^\s,;]+))?",
    re.IGNORECASE,
)
_UNSET: Any = object()
"""A condition with no `is VALUE`: the field must be truthy."""
_MISSING: Any = object()
"""A key a value does not have, or the result of a failed call (distinct from null)."""


@dataclass(frozen=True, slots=True)
class Condition:
    """The test of a conditional plan step: the value at `path` in a tool's latest result."""

    path: tuple[str, ...]
    value: Any = _UNSET
    negated: bool = False
    tool: str | None = None
    """Only this tool's results are read (the condition names it); None: any tool's."""

    def holds(self, results: Sequence[tuple[str, Any]]) -> bool:
        """Whether the condition is met by `results`: (tool, result) of the calls so far, oldest first.

        A failed call's result is `_MISSING`. A field no result has is taken as met, unless the
        condition names a tool and that tool was called (it failed, or did not say): see the
        module docstring.
        """
        named_tool_called = False
        for tool, result in reversed(results):
            if self.tool is not None and tool != self.tool:
                continue
            named_tool_called = self.tool is not None
            found = _MISSING if result is _MISSING else _at_path(result, self.path)
            if found is _MISSING:
                continue
            met = bool(found) if self.value is _UNSET else _same_json(found, self.value)
            return met != self.negated
        return not named_tool_called


@dataclass(frozen=True, slots=True)
class PlanStep:
    """One numbered line of the plan: the tools it calls, or calls otherwise when its condition fails."""

    tools: tuple[str, ...]
    condition: Condition | None = None
    otherwise: tuple[str, ...] = ()

    def calls(self, results: Sequence[tuple[str, Any]]) -> tuple[str, ...]:
        """The tools this step calls, given the results so far."""
        if self.condition is None or self.condition.holds(results):
            return self.tools
        return self.otherwise


def _at_path(value: Any, path: tuple[str, ...]) -> Any:
    for part in path:
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return _MISSING
    return value


def _same_json(a: Any, b: Any) -> bool:
    """JSON equality: true is not 1, 1 is 1.0."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    return bool(a == b)


def _json_word(word: str) -> Any:
    word = word.rstrip(".:")
    if len(word) >= 2 and word[0] == word[-1] and word[0] in "`\"'":
        return word[1:-1]
    try:
        return _json.loads(word)
    except ValueError:
        return word


def _named(text: str, tools: Sequence[str]) -> list[str]:
    """The offered tools `text` names as words, in the order it names them (first mention each)."""
    found: list[tuple[int, str]] = []
    for name in tools:
        match = re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", text)
        if match:
            found.append((match.start(), name))
    return [name for _, name in sorted(found)]


def _step_tools(text: str, tools: Sequence[str]) -> tuple[str, ...]:
    named = _named(text, tools)
    if _PARALLEL.search(text):
        return tuple(named)
    return tuple(named[:1])


def parse_plan(system: str, tools: Sequence[str]) -> list[PlanStep]:
    """The plan in a system prompt: its numbered lines that name an offered tool, in order.

    Args:
        system: the system messages' text.
        tools: the names of the tools the request offers.

    Returns:
        One step per plan line (see the module docstring); empty when no line names a tool.
    """
    steps: list[PlanStep] = []
    for line in system.splitlines():
        match = _PLAN_LINE.match(line)
        if match is None:
            continue
        text = match.group("text").strip()
        conditional = _IF.match(text)
        if conditional is None:
            called = _step_tools(text, tools)
            if called:
                steps.append(PlanStep(tools=called))
            continue
        condition_text = conditional.group("condition")
        parts = _OTHERWISE.split(conditional.group("then"), maxsplit=1)
        then_text = parts[0]
        else_text = parts[1] if len(parts) > 1 else ""
        then_tools, else_tools = _step_tools(then_text, tools), _step_tools(else_text, tools)
        field = _FIELD.search(condition_text)
        if field is None or not (then_tools or else_tools):
            if then_tools:
                steps.append(PlanStep(tools=then_tools))
            continue
        named = _named(condition_text, tools)
        value = field.group("value")
        condition = Condition(
            path=tuple(field.group("path").split(".")),
            value=_UNSET if value is None else _json_word(value),
            negated=bool(field.group("negated")),
            tool=named[0] if named else None,
        )
        steps.append(PlanStep(tools=then_tools, condition=condition, otherwise=else_tools))
    return steps


@dataclass(frozen=True, slots=True)
class _Called:
    """A tool call made since the last user message, and its answer when the conversation has one."""

    name: str
    arguments: dict[str, Any] | str
    result: Any = _MISSING
    """The parsed answer (JSON when it is JSON, else the text); missing when unanswered or an error."""


@dataclass(frozen=True, slots=True)
class _Turn:
    """What the stand-in reads from a conversation: the user's words and the calls of this turn."""

    user_texts: tuple[str, ...]
    """Every user message, latest first."""
    called: tuple[_Called, ...]
    calls_before: int
    """Tool calls in the conversation before this turn's (for call ids)."""

    @property
    def results(self) -> list[tuple[str, Any]]:
        return [(c.name, c.result) for c in self.called if c.result is not _MISSING]


def _read_turn(messages: Sequence[Message]) -> _Turn:
    last_user = max((i for i, m in enumerate(messages) if m.role == "user"), default=-1)
    answers: dict[str, tuple[str, bool]] = {
        m.tool_call_id: (m.content, m.is_error) for m in messages if m.role == "tool" and m.tool_call_id
    }
    called: list[_Called] = []
    before = 0
    for index, message in enumerate(messages):
        for call in message.tool_calls:
            if index < last_user:
                before += 1
                continue
            content, is_error = answers.get(call.id, ("", True))
            result: Any = _MISSING
            if not is_error:
                try:
                    result = _json.loads(content)
                except ValueError:
                    result = content
            called.append(_Called(name=call.name, arguments=call.arguments, result=result))
    user_texts = tuple(m.content for m in reversed(messages) if m.role == "user")
    return _Turn(user_texts=user_texts, called=tuple(called), calls_before=before)


def _next_calls(plan: Sequence[PlanStep], turn: _Turn) -> tuple[str, ...]:
    """The tools to call now; empty when it is time to answer."""
    done = 0
    for step in plan:
        tools = step.calls([(c.name, c.result) for c in turn.called[:done]])
        if not tools:
            continue
        made = tuple(c.name for c in turn.called[done : done + len(tools)])
        if made == tools:
            done += len(tools)
            continue
        # The calls so far do not follow the plan: stop calling and answer, never loop.
        return tools if done == len(turn.called) else ()
    return ()


def _find_key(value: Any, key: str) -> Any:
    """The value of the first `key` in `value`, depth first; _MISSING when there is none."""
    if isinstance(value, dict):
        if key in value:
            return value[key]
        children: Any = value.values()
    elif isinstance(value, list):
        children = value
    else:
        return _MISSING
    for child in children:
        found = _find_key(child, key)
        if found is not _MISSING:
            return found
    return _MISSING


_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "object": (dict,),
    "array": (list,),
    "null": (type(None),),
}


def _fits(value: Any, schema: dict[str, Any]) -> Any:
    """`value` as the schema's type when it is or converts losslessly; _MISSING when it does not fit."""
    if "enum" in schema and not any(_same_json(value, v) for v in schema["enum"]):
        return _MISSING
    kind = schema.get("type")
    kinds = [kind] if isinstance(kind, str) else list(kind) if isinstance(kind, list) else []
    if not kinds:
        return value
    for name in kinds:
        wanted = _JSON_TYPES.get(name)
        if wanted is None:
            continue
        if isinstance(value, bool) and name in ("integer", "number"):
            continue
        if isinstance(value, wanted):
            return value
    if "string" in kinds and isinstance(value, int | float) and not isinstance(value, bool):
        return json.dumps(value)
    if isinstance(value, str):
        text = value.strip()
        if "integer" in kinds and re.fullmatch(r"-?\d{1,18}", text):
            return int(text)
        if "number" in kinds and re.fullmatch(r"-?\d{1,18}(?:\.\d{1,18})?", text):
            return float(text) if "." in text else int(text)
    return _MISSING


def _pattern_match(pattern: str, texts: Sequence[str]) -> Any:
    unanchored = pattern.removeprefix("^").removesuffix("$")
    try:
        compiled = compile_pattern(unanchored)
        for text in texts:
            match = compiled.search(text)
            if match:
                return match.group(0)
    except (PatternError, PatternTimeout):
        return _MISSING  # a pattern that does not compile, or backtracks without end: no value from it
    return _MISSING


def _value_for(name: str, schema: dict[str, Any], turn: _Turn, vars_: dict[str, Any]) -> Any:
    """A value for the property `name` from the conversation and the case (see the module docstring)."""
    sources: list[Any] = [result for _, result in reversed(turn.results)]
    sources += [c.arguments for c in reversed(turn.called)]
    for source in sources:
        found = _find_key(source, name)
        value = _fits(found, schema) if found is not _MISSING else _MISSING
        if value is not _MISSING:
            return value
    pattern = schema.get("pattern")
    if isinstance(pattern, str):
        found = _pattern_match(pattern, turn.user_texts)
        if found is not _MISSING:
            value = _fits(found, schema)
            if value is not _MISSING:
                return value
    found = _find_key(vars_, name)
    return _fits(found, schema) if found is not _MISSING else _MISSING


def _arguments(tool: ToolSpec, turn: _Turn, vars_: dict[str, Any]) -> dict[str, Any]:
    properties = tool.parameters.get("properties")
    out: dict[str, Any] = {}
    for name, schema in (properties if isinstance(properties, dict) else {}).items():
        value = _value_for(name, schema if isinstance(schema, dict) else {}, turn, vars_)
        if value is not _MISSING:
            out[name] = value
    return out


def _words_of(name: str) -> set[str]:
    return {w for w in re.split(r"[^A-Za-z0-9]+", name.lower()) if w}


def _final_answer(request: ChatRequest, turn: _Turn) -> str:
    called = [c.name for c in turn.called]
    last = turn.results[-1][1] if turn.results else None
    if request.output.format != "json":
        text = f"Called {', '.join(called)}." if called else "Called no tool."
        return text if last is None else f"{text} {json.dumps(last, ensure_ascii=False, sort_keys=True)}"
    schema = request.output.json_schema
    properties = schema.get("properties") if isinstance(schema, dict) else None
    if not isinstance(properties, dict):
        return json.dumps(last if isinstance(last, dict) else {"result": last}, ensure_ascii=False)
    required = schema.get("required") if isinstance(schema, dict) else None
    required = required if isinstance(required, list) else []
    out: dict[str, Any] = {}
    for name, prop in properties.items():
        prop = prop if isinstance(prop, dict) else {}
        value = _value_for(name, prop, turn, dict(request.vars))
        if value is _MISSING and isinstance(prop.get("enum"), list):
            value = next(
                (
                    option
                    for tool in reversed(called)
                    for option in prop["enum"]
                    if isinstance(option, str) and _words_of(option) and _words_of(option) <= _words_of(tool)
                ),
                _MISSING,
            )
        if value is _MISSING and name in required and prop.get("type", "string") == "string":
            value = _summary_without_examples(turn.user_texts[0] if turn.user_texts else "")
        if value is not _MISSING:
            out[name] = value
    return json.dumps(out, ensure_ascii=False)


def _compact(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, separators=(", ", ": "))


class LocalProvider:
    """The `local` provider: a deterministic TF-IDF nearest-example stand-in, not a language model.

    See the module docstring for how it answers, and for its tool mode (a prompt
    whose system message numbers the steps that call its tools). `Completion.model`
    is `local-tfidf-knn` whatever model name the prompt asks for.
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

    def plan(self, request: ChatRequest) -> list[PlanStep]:
        """The tool plan the request's system messages give (empty: not tool mode)."""
        if not request.tools or request.tool_choice == "none":
            return []
        system = "\n".join(m.content for m in request.messages if m.role == "system")
        return parse_plan(system, [t.name for t in request.tools])

    def step(self, request: ChatRequest, plan: Sequence[PlanStep]) -> tuple[str, tuple[ToolCall, ...]]:
        """One agent step: the tool calls to make now, or (no calls) the final answer's text."""
        turn = _read_turn(request.messages)
        names = _next_calls(plan, turn)
        if not names:
            return _final_answer(request, turn), ()
        offered = {t.name: t for t in request.tools}
        first = turn.calls_before + len(turn.called) + 1
        calls = tuple(
            ToolCall(
                name=name,
                arguments=_arguments(offered[name], turn, dict(request.vars)),
                id=f"call_{first + i}",
            )
            for i, name in enumerate(names)
        )
        return "", calls

    async def complete(self, request: ChatRequest) -> Completion:
        """Answer `request` from its own examples, or take the next step of its tool plan.

        `usage` approximates tokens as whitespace-separated words: every message
        of the request for input (with its tool calls' arguments as JSON, and the
        names and descriptions of the tools offered), the answer (or the calls'
        names and arguments as JSON) for output.
        """
        plan = self.plan(request)
        if not plan:
            text = self.answer(request)
            usage = Usage(
                input_tokens=sum(word_count(m.content) for m in request.messages),
                output_tokens=word_count(text),
            )
            return Completion(text=text, usage=usage, model=MODEL_NAME, finish_reason="stop")
        text, calls = self.step(request, plan)
        input_words = sum(
            word_count(m.content) + sum(word_count(f"{c.name} {_compact(c.arguments)}") for c in m.tool_calls)
            for m in request.messages
        ) + sum(word_count(f"{t.name} {t.description}") for t in request.tools)
        output_words = word_count(text) + sum(word_count(f"{c.name} {_compact(c.arguments)}") for c in calls)
        return Completion(
            text=text,
            usage=Usage(input_tokens=input_words, output_tokens=output_words),
            model=MODEL_NAME,
            finish_reason="tool_calls" if calls else "stop",
            tool_calls=calls,
        )

    async def aclose(self) -> None:
        """Nothing to release: no connections, no files."""
