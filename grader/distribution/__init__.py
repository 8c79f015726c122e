"""What the grader hands out, and what it shows on a fresh clone.

- template.py      `grader template`: the student notebook, generated from the reference (solutions cut)
- golden_build.py  `grader golden [--check]`: the reference's answers as packaged vectors for self-checks
- student_repo.py  `grader template --export DIR` and `make wheel`: the student repository and its wheel,
                   which contain no solution (tests/test_wheel_safety.py guards that)
- demo.py          `grader demo` (`make demo`): the main job on the embedded default data
"""
