"""scikit-learn's own tests, run on fastnorm (a package: its conftest must not shadow tests/conftest.py)."""
