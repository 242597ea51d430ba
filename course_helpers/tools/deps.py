"""Write environment.yml and binder/ from the one dependency list in pyproject.toml.

    python -m course_helpers.tools.deps --write    # regenerate after editing pyproject.toml
    python -m course_helpers.tools.deps --check    # exit 1 if a generated file drifted

tests/test_packaging.py runs the check, so the three never disagree.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PYTHON = "3.11"
HEADER = "# Generated from pyproject.toml by `python -m course_helpers.tools.deps --write`; do not edit.\n"


def _pyproject() -> dict:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib  # type: ignore
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def requirements(extras=("lab",)) -> list:
    """The runtime dependencies plus the named extras, as pip requirement strings."""
    project = _pyproject()["project"]
    reqs = list(project["dependencies"])
    for extra in extras:
        reqs += project["optional-dependencies"][extra]
    return reqs


def render() -> dict:
    """Path -> text of every generated file."""
    reqs = requirements(("lab",))
    env = HEADER + "name: seeing-inside-cnns\nchannels:\n  - conda-forge\ndependencies:\n" \
        f"  - python={PYTHON}\n  - pip\n  - pip:\n"
    env += "".join(f'      - "{r}"\n' for r in reqs)
    env += "      - -e .\n"
    binder_reqs = HEADER + "".join(f"{r}\n" for r in reqs)
    return {
        "environment.yml": env,
        "binder/requirements.txt": binder_reqs,
        "binder/runtime.txt": f"python-{PYTHON}\n",
    }


def main(argv=None) -> int:
    """``python -m course_helpers.tools.deps``: write or check the generated environment files."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--write", action="store_true")
    group.add_argument("--check", action="store_true")
    args = parser.parse_args(argv)
    drift = []
    for rel, text in render().items():
        path = ROOT / rel
        if args.write:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        elif not path.is_file() or path.read_text() != text:
            drift.append(rel)
    if drift:
        print("out of date (run `python -m course_helpers.tools.deps --write`): " + ", ".join(drift))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
