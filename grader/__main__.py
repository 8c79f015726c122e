"""`python -m grader` is the same as the `grader` console script."""
from grader.cli import entry

entry()
