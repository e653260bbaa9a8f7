"""optax's own alias tests (``optax/_src/alias_test.py`` of the installed optax), run as
written and again with optbench's factories in place of optax's.

The cases are read from the installed optax at run time, not copied. The cases counted are
those of the common tests whose optimizer optbench also has (sgd, sgd with momentum,
adagrad, adadelta, rmsprop, adam); cases of optimizers optbench doesn't have are left out.

    python -m tests.optimizers.optax_alias_suite     # prints both counts
"""

from __future__ import annotations

import re
import sys
import types
import unittest
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

from optbench import optimizers

SHARED = ("sgd", "sgd_mom", "adagrad", "adadelta", "rmsprop", "adam")
_OPT_NAME = re.compile(r"opt_name='([a-z_]+)'")


def _alias_test_module() -> types.ModuleType:
    """``optax._src.alias_test``; scikit-learn, which only its L-BFGS tests use, is stubbed
    when it is not installed."""
    try:
        import sklearn  # noqa: F401
    except ImportError:
        stub = types.ModuleType("sklearn")
        for name in ("datasets", "linear_model"):
            setattr(stub, name, types.ModuleType(f"sklearn.{name}"))
            sys.modules[f"sklearn.{name}"] = getattr(stub, name)
        sys.modules["sklearn"] = stub
    from optax._src import alias_test

    return alias_test


def case_ids() -> list[str]:
    """The method names of the shared cases of ``AliasTest``, in optax's order."""
    module = _alias_test_module()
    loader = unittest.TestLoader()
    found = []
    for test in loader.loadTestsFromTestCase(module.AliasTest):
        match = _OPT_NAME.search(test.id())
        if match and match.group(1) in SHARED:
            found.append(test._testMethodName)
    return found


class _OptbenchAlias(types.ModuleType):
    """``optax._src.alias`` with optbench's factories in place of the shared ones."""

    def __init__(self, original: types.ModuleType):
        super().__init__(original.__name__)
        self._original = original

    def __getattr__(self, name: str):
        if name in ("sgd", "adagrad", "adadelta", "rmsprop", "adam"):
            return getattr(optimizers, name)
        return getattr(self._original, name)


@contextmanager
def optbench_substituted() -> Iterator[None]:
    """Inside: the alias tests build optbench's optimizers wherever they build optax's."""
    module = _alias_test_module()
    original = module.alias
    module.alias = _OptbenchAlias(original)
    try:
        yield
    finally:
        module.alias = original


def run_case(method: str, substitute: bool) -> tuple[str, str]:
    """Run one case: ("passed" | "failed" | "skipped", the failure's text)."""
    module = _alias_test_module()
    result = unittest.TestResult()
    test = module.AliasTest(method)
    if substitute:
        with optbench_substituted():
            test.run(result)
    else:
        test.run(result)
    problems = result.failures + result.errors
    if problems:
        return "failed", "\n".join(text for _, text in problems)
    if result.skipped:
        return "skipped", result.skipped[0][1]
    return "passed", ""


def counts() -> dict[str, Counter]:
    """Outcomes of every shared case, with optax and with optbench."""
    out = {"optax": Counter(), "optbench": Counter()}
    for method in case_ids():
        for who, substitute in (("optax", False), ("optbench", True)):
            out[who][run_case(method, substitute)[0]] += 1
    return out


if __name__ == "__main__":
    for who, tally in counts().items():
        print(f"{who}: {sum(tally.values())} cases, " + ", ".join(
            f"{n} {outcome}" for outcome, n in sorted(tally.items())))
