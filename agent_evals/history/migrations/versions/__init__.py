"""The history store's schema revisions, oldest first (Alembic reads `revision`/`down_revision`)."""
