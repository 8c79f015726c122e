"""Trusted checks: turn what the kernel returned into CheckResults.

Model checks (rnn.* / lstm.*): grader.checks.model.run_model_checks.
"""
