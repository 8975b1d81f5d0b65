"""Tests for the offline `local` provider and the bundled ticket-triage example."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from agent_evals.load import load_project, load_prompt
from agent_evals.models import Message, ModelSpec, OutputSpec, Prompt
from agent_evals.providers import ProviderSettings
from agent_evals.providers import local as local_module
from agent_evals.providers.base import ChatRequest, Completion
from agent_evals.providers.local import MODEL_NAME, LocalProvider, split_messages, word_count
from agent_evals.render import render

ROOT = Path(__file__).resolve().parents[1]
CANDIDATE = ROOT / "examples" / "candidate" / "ticket-triage.yaml"

SYSTEM = "Triage the ticket. Answer with JSON: summary and disposition."

# A small triage set: three examples per label, so the tests exercise the same
# nearest-centroid path as the bundled example.
EXAMPLES: dict[str, list[str]] = {
    "refund": [
        "I was charged twice for my subscription this month. Please refund the duplicate charge.",
        "The blender arrived broken. I want my money back, not a replacement.",
        "You renewed my plan without asking. Refund the renewal please.",
    ],
    "account_access": [
        "I can't log in. The password reset email never arrives.",
        "Lost my phone and cannot pass the two-factor code to sign in.",
        "My account is locked after too many login attempts.",
    ],
    "feature_request": [
        "It would be great if you could add a dark mode to the app.",
        "Please add an export to spreadsheet option, we would use it every week.",
        "Could you support Apple Pay at checkout? Customers keep asking for it.",
    ],
}
INPUTS = {
    "refund": "Please refund the charge, I was billed twice for the same order.",
    "account_access": "I cannot log in to my account, the password reset never comes.",
    "feature_request": "Would be great if you could add a dark theme option.",
}
LONG_TICKET = (
    "Subject: Billed twice for the Premium plan\n\n"
    "Hello team. My card statement shows the Premium plan charged twice on March 3, each for 49 dollars. "
    "I only have one account and one plan. "
    "Please refund the duplicate charge to the same card as soon as you can. "
    "Thanks a lot."
)


def _summary(label: str, index: int) -> str:
    return f"Customer ticket about {label.replace('_', ' ')} number {index} needs handling."


def _words(text: str) -> set[str]:
    return set(re.findall(r"\w+", text.lower()))


def chat(
    examples: dict[str, list[str]],
    text: str,
    *,
    fmt: str = "json",
    answer: Any = None,
    system: str | None = SYSTEM,
) -> ChatRequest:
    """A rendered request: optional system message, example pairs label by label, then `text`."""
    messages = [Message(role="system", content=system)] if system else []
    for label, inputs in examples.items():
        for index, example in enumerate(inputs):
            reply = (
                answer(label, index) if answer else {"summary": _summary(label, index), "disposition": label}
            )
            reply_text = reply if isinstance(reply, str) else json.dumps(reply)
            messages += [Message(role="user", content=example), Message(role="assistant", content=reply_text)]
    messages.append(Message(role="user", content=text))
    return ChatRequest(
        model=ModelSpec(provider="local", temperature=0.7, seed=1),
        messages=tuple(messages),
        output=OutputSpec(format="json" if fmt == "json" else "text"),
    )


def provider() -> LocalProvider:
    return LocalProvider(ProviderSettings(name="local", type="local"))


def complete(request: ChatRequest, p: LocalProvider | None = None) -> Completion:
    return asyncio.run((p or provider()).complete(request))


def answer_json(request: ChatRequest, p: LocalProvider | None = None) -> dict[str, Any]:
    value = json.loads(complete(request, p).text)
    assert isinstance(value, dict)
    return value


# --- reading the messages ---------------------------------------------------------


def test_split_messages_pairs_examples_and_ignores_system_messages() -> None:
    request = chat({"refund": EXAMPLES["refund"][:2]}, "the input")

    examples, text = split_messages(request.messages)

    assert [e.input for e in examples] == EXAMPLES["refund"][:2]
    assert all(json.loads(e.answer)["disposition"] == "refund" for e in examples)
    assert text == "the input"


def test_split_messages_without_examples_or_user_message() -> None:
    system, user = Message(role="system", content="s"), Message(role="user", content="hi")
    assert split_messages([system, user]) == ([], "hi")
    assert split_messages([system]) == ([], "")


# --- answers ---------------------------------------------------------------------


def test_same_request_gets_the_same_answer() -> None:
    request = chat(EXAMPLES, LONG_TICKET)

    first = complete(request)
    again = complete(request)
    other_provider = complete(request, provider())

    assert first.text == again.text == other_provider.text
    assert first.model == MODEL_NAME
    assert first.finish_reason == "stop"


@pytest.mark.parametrize("label", sorted(INPUTS))
def test_input_gets_the_label_of_the_nearest_examples(label: str) -> None:
    assert answer_json(chat(EXAMPLES, INPUTS[label]))["disposition"] == label


def test_json_answer_follows_the_examples_keys_in_order() -> None:
    def reply(label: str, index: int) -> dict[str, Any]:
        return {
            "disposition": label,
            "summary": _summary(label, index),
            "priority": "p1" if label == "refund" else "p3",
            "escalate": label == "refund",
            "score": index,
        }

    answer = answer_json(chat(EXAMPLES, INPUTS["refund"], answer=reply))

    assert list(answer) == ["disposition", "summary", "priority", "escalate", "score"]
    # Label-like strings and non-string values come from the chosen (refund) example.
    assert answer["disposition"] == "refund"
    assert answer["priority"] == "p1"
    assert answer["escalate"] is True
    assert isinstance(answer["score"], int)
    # Free text is drawn from the input, not copied from an example.
    assert answer["summary"] not in {_summary("refund", i) for i in range(3)}
    assert _words(answer["summary"]) <= _words(INPUTS["refund"])


def test_dropping_a_labels_examples_changes_its_answers() -> None:
    without_refund = {label: inputs for label, inputs in EXAMPLES.items() if label != "refund"}
    refund_inputs = [INPUTS["refund"], *EXAMPLES["refund"]]

    before = [answer_json(chat(EXAMPLES, text))["disposition"] for text in refund_inputs]
    after = [answer_json(chat(without_refund, text))["disposition"] for text in refund_inputs]

    assert before == ["refund"] * len(refund_inputs)
    assert "refund" not in after
    # The other labels keep their answers.
    for label in ("account_access", "feature_request"):
        assert answer_json(chat(without_refund, INPUTS[label]))["disposition"] == label


def test_renaming_a_label_in_the_examples_renames_it_in_the_answer() -> None:
    renamed = {("money_back" if label == "refund" else label): inputs for label, inputs in EXAMPLES.items()}

    answer = answer_json(chat(renamed, INPUTS["refund"]))

    assert answer["disposition"] == "money_back"


def test_text_prompt_returns_the_nearest_examples_answer_verbatim() -> None:
    def reply(label: str, index: int) -> str:
        return f"Route to the {label} queue (example {index})."

    for label, text in INPUTS.items():
        answer = complete(chat(EXAMPLES, text, fmt="text", answer=reply)).text
        assert answer.startswith(f"Route to the {label} queue (example ")


def test_json_prompt_whose_examples_are_not_json_answers_with_example_text() -> None:
    request = chat(EXAMPLES, INPUTS["account_access"], answer=lambda label, i: f"queue: {label}")

    assert complete(request).text == "queue: account_access"


def test_equal_similarity_goes_to_the_first_label_in_prompt_order() -> None:
    # No word in common with any example: every label is equally (un)like it.
    for order in (["feature_request", "refund"], ["refund", "feature_request"]):
        examples = {label: EXAMPLES[label] for label in order}
        assert answer_json(chat(examples, "zzz qqq"))["disposition"] == order[0]


def test_no_examples_answers_with_an_extractive_summary() -> None:
    request = chat({}, LONG_TICKET, fmt="text")

    summary = complete(request).text

    assert summary
    assert word_count(summary) <= local_module.DEFAULT_SUMMARY_WORDS
    # Extractive: every sentence of the summary is a sentence (or the subject line) of the input.
    for sentence in re.split(r"(?<=[.!?])\s+", summary):
        assert sentence in LONG_TICKET or sentence.removesuffix(".") in LONG_TICKET
    assert "refund the duplicate charge" in summary


def test_summary_keeps_to_the_median_word_count_of_the_examples() -> None:
    def reply(label: str, index: int) -> dict[str, str]:
        # 4, 5 and 6 words: median 5.
        return {"summary": " ".join(["word"] * (4 + index)), "disposition": label}

    summary = answer_json(chat(EXAMPLES, LONG_TICKET, answer=reply))["summary"]

    assert 0 < word_count(summary) <= 5


def test_a_long_best_sentence_is_cut_to_the_budget() -> None:
    long_sentence = " ".join(f"refund{i}" for i in range(30)) + "."

    def reply(label: str, index: int) -> dict[str, str]:
        return {"summary": "three word summary here", "disposition": label}

    summary = answer_json(chat(EXAMPLES, long_sentence, answer=reply))["summary"]

    assert word_count(summary) == 4
    assert summary.startswith("refund0 refund1")
    assert summary.endswith("...")


def test_usage_counts_words_of_the_request_and_the_answer() -> None:
    request = chat(EXAMPLES, INPUTS["refund"])

    completion = complete(request)

    assert completion.usage is not None
    assert completion.usage.input_tokens == sum(len(m.content.split()) for m in request.messages)
    assert completion.usage.output_tokens == len(completion.text.split()) > 0


def test_vectorizer_is_fitted_once_per_example_set(monkeypatch: pytest.MonkeyPatch) -> None:
    fits: list[int] = []
    real_fit = local_module._Fitted.fit

    def counting_fit(examples: list[local_module.Example], json_output: bool) -> local_module._Fitted:
        fits.append(len(examples))
        return real_fit(examples, json_output)

    monkeypatch.setattr(local_module._Fitted, "fit", counting_fit)
    p = provider()
    for text in [*INPUTS.values()] * 5:
        complete(chat(EXAMPLES, text), p)
    assert fits == [9]

    complete(chat({"refund": EXAMPLES["refund"], "feature_request": EXAMPLES["feature_request"]}, "x"), p)
    assert fits == [9, 6]


def test_aclose_is_harmless() -> None:
    asyncio.run(provider().aclose())


def test_importing_the_module_does_not_import_scikit_learn() -> None:
    code = "import sys, agent_evals.providers.local; print('sklearn' in sys.modules, 'numpy' in sys.modules)"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.split() == ["False", "False"]


# --- the bundled example -------------------------------------------------------------


def _dispositions(prompt: Prompt, cases: Any) -> dict[str, tuple[str, str]]:
    """Case id -> (expected disposition, answered disposition), with the local model."""
    p = provider()
    out = {}
    for case in cases:
        answer = answer_json(render(prompt, case), p)
        out[case.id] = (case.expected["disposition"], answer["disposition"])
    return out


def _accuracy(
    results: dict[str, tuple[str, str]], label: str | None = None, exclude: str | None = None
) -> float:
    rows = [(e, a) for e, a in results.values() if (label is None or e == label) and e != exclude]
    return sum(e == a for e, a in rows) / len(rows)


@pytest.fixture(scope="module")
def bundled() -> Any:
    cwd = Path.cwd()
    os.chdir(ROOT)
    try:
        project = load_project(Path("."))
    finally:
        os.chdir(cwd)
    return project


def test_bundled_example_loads_without_errors(bundled: Any) -> None:
    assert bundled.errors == []
    prompt = bundled.prompts["ticket-triage"]
    evalset = bundled.evalsets["ticket-triage"]
    assert evalset.prompt == prompt.id
    assert prompt.model.provider == "local"
    assert evalset.provenance is not None
    assert evalset.provenance.synthetic
    assert len(evalset.cases) >= 66
    counts = Counter(case.expected["disposition"] for case in evalset.cases)
    schema = prompt.output.json_schema
    assert schema is not None
    assert set(counts) == set(schema["properties"]["disposition"]["enum"])
    assert min(counts.values()) >= 10
    assert any(case.cluster for case in evalset.cases)
    for case in evalset.cases:
        assert case.expected["disposition"] in case.tags
        assert case.vars["ticket"]["channel"] in case.tags


def test_bundled_candidate_is_the_base_prompt_without_refund_examples(bundled: Any) -> None:
    base = bundled.prompts["ticket-triage"]
    candidate = load_prompt(CANDIDATE)

    assert candidate.id == base.id
    assert candidate.version != base.version
    dropped = [m for m in base.messages if m not in candidate.messages]
    assert len(dropped) == 6
    assert all(json.loads(m.content)["disposition"] == "refund" for m in dropped if m.role == "assistant")


def test_bundled_base_passes_and_candidate_regresses_on_refunds(bundled: Any) -> None:
    evalset = bundled.evalsets["ticket-triage"]
    base = _dispositions(bundled.prompts["ticket-triage"], evalset.cases)
    candidate = _dispositions(load_prompt(CANDIDATE), evalset.cases)

    assert _accuracy(base) >= 0.75
    for label in {e for e, _ in base.values()}:
        assert _accuracy(base, label) >= 0.66, label
    refund_passing = [cid for cid, (e, a) in base.items() if e == a == "refund"]
    regressed = [cid for cid in refund_passing if candidate[cid][1] != "refund"]
    assert len(regressed) >= 0.75 * len(refund_passing)
    # The rest of the eval set is about as good as before.
    assert _accuracy(candidate, exclude="refund") >= _accuracy(base, exclude="refund") - 0.05
