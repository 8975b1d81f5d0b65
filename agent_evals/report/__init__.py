"""Reporters: the terminal (rich), Markdown for PR comments, JUnit XML and JSON."""
