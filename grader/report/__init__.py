"""Outputs of a graded submission: terminal table, JSON (and later HTML, CSV, ...)."""
