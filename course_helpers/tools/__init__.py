"""Maintainer tooling, kept apart from what the lessons call.  No notebook imports this.

    python -m course_helpers.tools.notebooks --clean     # strip outputs; --record-checked, --repo, --slides
    python -m course_helpers.tools.deps --write          # environment.yml and binder/ from pyproject.toml
    python -m course_helpers.tools.train [--evaluate]    # the shipped course-cnn weights and their figures
    python -m course_helpers.tools.stylizer train        # the shipped one-pass style network
    python -m course_helpers.tools.shape                 # the package's import graph and lines

Benchmarks live outside the package, in ``benchmarks/run.py`` (``make bench``).
"""
