"""Run scikit-learn's own tests on fastnorm (see sklearn_suite_loader.py).

- scikit-learn's fixtures and test parametrization (global_random_seed,
  global_dtype, pyplot, ...) come from its conftest, as in its own runs;
- tests listed in deselected.txt are deselected, each for its stated reason;
- every call into fastnorm's kernel module is counted, and the session fails
  if scikit-learn's tests ran without reaching fastnorm's kernels (a
  substitution that silently fell back to scikit-learn would pass them all).
"""
import functools
import types
from pathlib import Path

import pytest
from sklearn.conftest import (  # noqa: F401  (fixtures and hooks, re-exported for pytest)
    global_dtype,
    hide_available_pandas,
    pyplot,
    pytest_generate_tests,
)

import fastnorm._cpu

HERE = Path(__file__).parent
KERNEL_CALLS = {}


def _deselect_list():
    """{test name or node id inside this folder: reason} from deselected.txt."""
    entries = {}
    for line in (HERE / "deselected.txt").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            test, _, reason = line.partition(" # ")
            assert reason.strip(), f"deselected.txt: {test} needs a reason"
            entries[test.strip()] = reason.strip()
    return entries


def pytest_collection_modifyitems(config, items):
    deselect = _deselect_list()
    if not deselect:
        return
    kept, dropped = [], []
    for item in items:
        path = Path(str(item.path))
        local_id = f"{path.name}::{item.name}"
        if path.parent == HERE and (local_id in deselect or
                                    f"{path.name}::{item.originalname}" in deselect):
            dropped.append(item)
        else:
            kept.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


def _counting(name, function):
    @functools.wraps(function)
    def counted(*args, **kwargs):
        KERNEL_CALLS[name] = KERNEL_CALLS.get(name, 0) + 1
        return function(*args, **kwargs)
    return counted


@pytest.fixture(scope="package", autouse=True)
def count_kernel_calls():
    """Count calls of every function of fastnorm._cpu while this suite runs."""
    originals = {name: obj for name, obj in vars(fastnorm._cpu).items()
                 if isinstance(obj, types.FunctionType) and not name.startswith("_")}
    for name, function in originals.items():
        setattr(fastnorm._cpu, name, _counting(name, function))
    yield KERNEL_CALLS
    for name, function in originals.items():
        setattr(fastnorm._cpu, name, function)


def pytest_terminal_summary(terminalreporter):
    if KERNEL_CALLS:
        total = sum(KERNEL_CALLS.values())
        terminalreporter.write_line(
            f"scikit-learn's suite reached fastnorm's kernels {total} times "
            f"({len(KERNEL_CALLS)} kernel entry points)")


SUITE_TESTS_RUN = []


def pytest_runtest_logreport(report):
    if report.when == "call" and report.passed and Path(report.fspath).parent == HERE:
        SUITE_TESTS_RUN.append(report.nodeid)


def pytest_sessionfinish(session, exitstatus):
    if SUITE_TESTS_RUN and not KERNEL_CALLS and exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        print("\nscikit-learn's suite ran, but no call reached fastnorm's kernels: "
              "the substitution did not happen")


def pytest_configure(config):
    # markers scikit-learn's tests carry (registered by pytest-run-parallel
    # or by scikit-learn's conftest when that plugin is absent)
    for marker in ("thread_unsafe: not run in parallel threads",
                   "parallel_threads(n): run in n threads",
                   "iterations(n): run n times per thread"):
        config.addinivalue_line("markers", marker)
