"""The bounds of the numbers a command takes: what `-j`, `--repeat`, `--seed` and the counts accept.

A number past its bound is a usage error (exit 2) before anything runs: an unbounded one planned
10^23 repeats, or overflowed a seed deep inside scikit-learn. Kept apart from the modules that use
them so the command line can state them without importing those modules.
"""

MAX_CONCURRENCY = 1_024
"""The most calls a run keeps in flight (`-j`, agent-evals.yaml's `defaults.concurrency`, a provider's
`max_concurrency`): far past any provider's limit, short of the sockets a process may open."""

MAX_REPEAT = 1_000
"""The most times a run repeats each case (`--repeat`): enough to measure a flaky case's rate; every
repeat of every case is planned before the first is sent."""

MAX_SEED = 2**32 - 1
"""The largest `--seed`: scikit-learn's `random_state` (and NumPy's legacy seeds) are 32-bit."""

MAX_COUNT = 1_000_000_000
"""The largest count a command takes: cases allowed to regress, rows to sample, rows per stratum,
a pull request's number."""
