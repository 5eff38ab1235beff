"""Offline answers (filled by the workflow that owns these schemas)."""
