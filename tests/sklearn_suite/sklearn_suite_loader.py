"""Load scikit-learn's own test modules with fastnorm's estimators and
functions in place of scikit-learn's (as scikit-learn-intelex runs
scikit-learn's tests on its patched estimators).

A module is executed afresh from the installed scikit-learn's source file,
under a name of its own (so the test classes it defines pickle), while
`sklearn.preprocessing` temporarily hands out fastnorm's 10 names: its
``from sklearn.preprocessing import StandardScaler`` then binds fastnorm's
class, and so do the estimator instances its parametrize lists build at
import. Afterwards sklearn.preprocessing is restored, so scikit-learn's own
code (and fastnorm's reference tests) keep using scikit-learn's classes.
"""
import ast
import contextlib
import importlib.util
import sys

import sklearn.preprocessing

import fastnorm.preprocessing

SUBSTITUTED = ("StandardScaler", "MinMaxScaler", "MaxAbsScaler", "RobustScaler", "Normalizer",
               "scale", "minmax_scale", "maxabs_scale", "robust_scale", "normalize")


@contextlib.contextmanager
def fastnorm_in_sklearn_preprocessing():
    originals = {name: getattr(sklearn.preprocessing, name) for name in SUBSTITUTED}
    try:
        for name in SUBSTITUTED:
            setattr(sklearn.preprocessing, name, getattr(fastnorm.preprocessing, name))
        yield
    finally:
        for name, obj in originals.items():
            setattr(sklearn.preprocessing, name, obj)


def _import_dependencies(source):
    """Import every scikit-learn module `source` imports, before the swap:
    one imported first during it would bind fastnorm's names for good (an
    internal table keyed by scikit-learn's classes, say)."""
    for node in ast.walk(ast.parse(source)):
        names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else \
            [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0 else []
        for name in names:
            if name.split(".")[0] == "sklearn":
                importlib.import_module(name)


def load(sklearn_module):
    """scikit-learn's test module `sklearn_module`, run with fastnorm's names."""
    origin = importlib.util.find_spec(sklearn_module).origin
    with open(origin) as f:
        _import_dependencies(f.read())
    # a top-level name: pickle imports a class's module by name, parents first
    name = "fastnorm_sklearn_suite__" + sklearn_module.removeprefix("sklearn.").replace(".", "__")
    spec = importlib.util.spec_from_file_location(name, origin)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    with fastnorm_in_sklearn_preprocessing():
        spec.loader.exec_module(module)
    return module


def substituted_names(module):
    """The substituted names `module` binds, each with whether it is fastnorm's."""
    return {name: getattr(module, name) is getattr(fastnorm.preprocessing, name)
            for name in SUBSTITUTED if hasattr(module, name)}


def tests_of(module):
    """The names pytest collects from `module`: its tests, test classes and fixtures."""
    return {name: obj for name, obj in vars(module).items()
            if name.startswith(("test", "Test")) or hasattr(obj, "_fixture_function_marker")
            or type(obj).__name__ == "FixtureFunctionDefinition"}
