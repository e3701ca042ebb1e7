"""scikit-learn's `sklearn.preprocessing.tests.test_data`, run on fastnorm's estimators (see sklearn_suite_loader)."""
from .sklearn_suite_loader import load, substituted_names

_suite = load("sklearn.preprocessing.tests.test_data")
globals().update({k: v for k, v in vars(_suite).items() if not k.startswith("__")})


def test_fastnorm_substituted():
    names = substituted_names(_suite)
    assert names and all(names.values()), names
