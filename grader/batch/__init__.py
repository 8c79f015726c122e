"""Batch grading (`grader grade`): discover submissions, grade them on an executor, store, report.

One idea per module: discover (input layouts, ids, problems), jobs (the executor contract),
executors (local worker processes), store (SQLite), progress (the stderr line), run (orchestration).
"""
