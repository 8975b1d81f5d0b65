# The commands in the README: `make demo`, `make test` and `make bench`. Each installs into .venv first.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo dashboard-demo demo-monitor test lint typecheck unit litellm bench bench-sample bench-history bench-gate mutation clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# LiteLLM's proxy, the third-party OpenAI-compatible server tests/test_litellm_proxy.py runs
# against on 127.0.0.1. Its own venv: litellm pins its own openai, fastapi and more (about 760 MB,
# 40 to 60 s to install). Without it that test skips and names this target.
LITELLM_VERSION := 1.108.7
LITELLM_VENV    := .venv-litellm
LITELLM_STAMP   := $(LITELLM_VENV)/.installed-$(LITELLM_VERSION)

$(LITELLM_STAMP):
	$(PYTHON) -m venv $(LITELLM_VENV)
	$(LITELLM_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(LITELLM_VENV)/bin/python -m pip install --quiet 'litellm[proxy]==$(LITELLM_VERSION)'
	touch $(LITELLM_STAMP)

litellm: $(LITELLM_STAMP)

DEMO := .agent-evals/demo

# Both examples offline, each then gated on a bundled regressing edit (examples/candidate/): the
# ticket triage prompt without its refund examples, and the refund agent without the instruction
# to check the refund policy. Each diff must fail the gate with exit 1, and the demo checks that
# it does: `make demo` exits 0 when both gates failed as they should.
demo: $(STAMP)
	$(BIN)/agent-evals validate
	$(BIN)/agent-evals run --evalset ticket-triage --output $(DEMO)/baseline.jsonl
	$(BIN)/agent-evals run --evalset ticket-triage --prompt-file examples/candidate/ticket-triage.yaml --output $(DEMO)/candidate.jsonl
	@$(BIN)/agent-evals diff $(DEMO)/baseline.jsonl $(DEMO)/candidate.jsonl --report-md $(DEMO)/report.md; \
	code=$$?; \
	if [ $$code -eq 1 ]; then echo "demo: the gate failed on the regressing edit (exit 1), as it should. PR comment: $(DEMO)/report.md"; \
	else echo "demo: expected the gate to fail with exit 1, got $$code"; exit 1; fi
	$(BIN)/agent-evals run --evalset refund-agent --output $(DEMO)/refund-agent/baseline.jsonl
	$(BIN)/agent-evals run --evalset refund-agent --prompt-file examples/candidate/refund-agent.yaml --output $(DEMO)/refund-agent/candidate.jsonl
	@$(BIN)/agent-evals diff $(DEMO)/refund-agent/baseline.jsonl $(DEMO)/refund-agent/candidate.jsonl --report-md $(DEMO)/refund-agent/report.md; \
	code=$$?; \
	if [ $$code -eq 1 ]; then echo "demo: the refund agent's gate failed on the edit that skips lookup_policy (exit 1), as it should. PR comment: $(DEMO)/refund-agent/report.md"; \
	else echo "demo: expected the refund agent's gate to fail with exit 1, got $$code"; exit 1; fi

# A synthetic ten-week history of the ticket-triage example (examples/history/README.md): its dashboard
# in .agent-evals/demo-history/dashboard.html, and the README's screenshot.
dashboard-demo: $(STAMP)
	$(BIN)/python examples/history/make_history.py .agent-evals/demo-history --screenshot docs/images/dashboard.png

# After the merge (examples/monitor/README.md): a synthetic six-week production log of the ticket-triage
# example with a version change that hurts phone tickets; monitor, verify, freshness, a page to a local
# stand-in receiver, and the dashboard, in .agent-evals/demo-monitor/. Offline, no key, about 10 seconds.
demo-monitor: $(STAMP)
	$(BIN)/python examples/monitor/make_monitor_demo.py .agent-evals/demo-monitor

test: lint typecheck unit

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP) $(LITELLM_STAMP)
	$(BIN)/pytest -q

# The runner's overhead (bench/README.md): a local OpenAI-compatible server with a fixed
# latency (a plain asyncio one and uvicorn), `agent-evals run` end to end on 2,000, 10,000 and
# 100,000 cases; prints the figures and issue 17's acceptance items.
BENCH_STAMP := $(VENV)/.installed-bench

$(BENCH_STAMP): $(STAMP) pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	touch $(BENCH_STAMP)

# Three repetitions, medians and ranges printed; one: make bench BENCH_ARGS=
BENCH_ARGS ?= --repeat 3

bench: $(BENCH_STAMP)
	$(BIN)/python bench/run_bench.py $(BENCH_ARGS)

# Mutation testing of the gate's core (docs/TESTING.md): mutmut with [tool.mutmut] in pyproject.toml,
# from an empty mutants/; prints killed/survived per module, the score, and every surviving mutant.
# One module: make mutation MUTATION_ARGS='--module agent_evals/integrity.py'
mutation: $(STAMP)
	$(BIN)/python bench/mutation_score.py $(MUTATION_ARGS)

clean:
	rm -rf $(VENV) $(LITELLM_VENV) .agent-evals .pytest_cache .mypy_cache .ruff_cache mutants

bench-sample: $(STAMP)
	$(BIN)/python bench/bench_sample.py

bench-history: $(STAMP)
	$(BIN)/python bench/bench_history.py $(HISTORY_BENCH_ARGS)

# The gate's statistical promises (bench/README.md): seeded simulated records through diff and gate;
# prints false alarms, power and the stated vs measured detectable drop. About 15 minutes on 2 cores.
# Smoke run: make bench-gate GATE_SIM_ARGS=--quick
bench-gate: $(STAMP)
	$(BIN)/python bench/gate_sim.py $(GATE_SIM_ARGS)
