"""Reporters: the terminal (rich) now; Markdown, JUnit and JSON build on the same summaries."""
