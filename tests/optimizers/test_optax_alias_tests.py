"""optax's own alias tests, read from the installed optax, pass with optbench's factories in
place of optax's (see :mod:`tests.optimizers.optax_alias_suite` for the counts of both)."""

import pytest

from tests.optimizers.optax_alias_suite import case_ids, run_case

CASES = case_ids()


def test_the_shared_cases_are_found():
    # 7 optimizer settings x the common tests, and sgd_mom/adam x 16 explicit dtypes
    assert len(CASES) >= 100
    assert any(c.startswith("test_optimization") for c in CASES)
    assert any(c.startswith("test_optimizers_can_be_wrapped_in_inject_hyperparams")
               for c in CASES)


@pytest.mark.parametrize("method", CASES)
def test_optax_alias_case_passes_with_optbench(method):
    # optax passes every one of these cases itself (or skips it for a reason that depends
    # only on the case: complex parameters, TPU); optbench must too
    outcome, text = run_case(method, substitute=True)
    assert outcome in ("passed", "skipped"), text
