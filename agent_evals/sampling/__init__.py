"""`agent-evals sample`: from a production log to a versioned eval set.

    from agent_evals.sampling import SampleOptions, sample, print_summary

    report = sample(SampleOptions(log=Path("support.jsonl"), prompt="ticket-triage", n=500,
                                  mapping={"vars.ticket.subject": "payload.subject", "label": "resolution.disposition"},
                                  stratify_by="disposition"))
    print_summary(console, report)

Modules, one step each: `_options` (what to do, what was done), `_read` (the
log in chunks), `_fields` (the field mapping), `_scan` (the streaming pass:
filters, counts, pool candidates), `_select` (the bounded pool and the final
choice), `_write` (new or appended eval set files), `_sample` (the pipeline),
`_summary` (the printed summary).
pandas, scikit-learn and pyarrow are imported only when a log is read.
"""

from __future__ import annotations

from agent_evals.sampling._fields import FieldMap, SampleSpec, load_spec, parse_map_args
from agent_evals.sampling._options import (
    CASES_FILE_ABOVE,
    METHODS,
    SampleOptions,
    SampleReport,
    StratumReport,
)
from agent_evals.sampling._sample import sample
from agent_evals.sampling._scan import parse_time, window_bound
from agent_evals.sampling._summary import print_summary

__all__ = [
    "CASES_FILE_ABOVE",
    "METHODS",
    "FieldMap",
    "SampleOptions",
    "SampleReport",
    "SampleSpec",
    "StratumReport",
    "load_spec",
    "parse_map_args",
    "parse_time",
    "print_summary",
    "sample",
    "window_bound",
]
