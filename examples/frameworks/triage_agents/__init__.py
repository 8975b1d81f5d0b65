"""SYNTHETIC EXAMPLE: one ticket-triage agent written with each framework agent-evals can call."""
