"""Alembic migrations of the history store, applied by `agent_evals.history.store` on first use.

Add a revision as a new file in versions/ (revision = the next number, down_revision = the last)
and set `store.HEAD` to it; never edit a released revision: stores in the field are at it.
"""
