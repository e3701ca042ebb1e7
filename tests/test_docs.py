"""help() and dir() tell the truth: scikit-learn's docstrings carried over
with fastnorm's notes, examples that run, public-only namespaces, --version."""
import doctest
import importlib
import inspect
import pydoc
import re
import subprocess
import sys
import sysconfig
import warnings
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as distribution_version
from pathlib import Path

import pytest
import sklearn.preprocessing as skp
from sklearn.externals._numpydoc import docscrape  # numpydoc's parser, as scikit-learn vendors it

import fastnorm
import fastnorm.preprocessing as fp

CLASSES = ["StandardScaler", "MinMaxScaler", "MaxAbsScaler", "RobustScaler", "Normalizer"]
FUNCTIONS = ["scale", "minmax_scale", "maxabs_scale", "robust_scale", "normalize"]

# the methods fastnorm writes itself (the rest are scikit-learn's, inherited)
OVERRIDDEN = {
    "StandardScaler": {"partial_fit", "transform", "inverse_transform"},
    "MinMaxScaler": {"partial_fit", "transform", "inverse_transform"},
    "MaxAbsScaler": {"partial_fit", "transform", "inverse_transform"},
    "RobustScaler": {"fit", "transform", "inverse_transform"},
    "Normalizer": {"fit", "transform"},
}


def _public_methods(cls):
    return {name: getattr(cls, name) for name in dir(cls)
            if not name.startswith("_") and callable(getattr(cls, name))}


def _fastnorm_methods(cls):
    """Public methods in cls.__dict__ whose code is fastnorm's (under the decorators)."""
    return {name for name, member in vars(cls).items()
            if not name.startswith("_") and callable(member)
            and inspect.unwrap(member).__module__.startswith("fastnorm")}


def _parameter_names(obj, skip_self):
    names = list(inspect.signature(obj).parameters)
    return names[1:] if skip_self else names


def _parse(doc):
    """The numpydoc sections of `doc`; any warning (unknown section, ...) fails."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return docscrape.NumpyDocString(inspect.cleandoc(doc))  # as pydoc.getdoc gives it


def _sections(doc):
    """Section titles of a docstring (a line underlined by as many dashes)."""
    lines = [line.strip() for line in inspect.cleandoc(doc).splitlines()]
    return [a for a, b in zip(lines, lines[1:]) if a and set(b) == {"-"} and len(a) == len(b)]


@pytest.fixture(scope="module", params=CLASSES)
def classes(request):
    return getattr(fp, request.param), getattr(skp, request.param)


def test_overridden_methods_are_the_ones_found(classes):
    cls, _ = classes
    assert _fastnorm_methods(cls) == OVERRIDDEN[cls.__name__]


def test_every_public_method_has_a_full_docstring(classes):
    cls, sk = classes
    for name, method in _public_methods(cls).items():
        doc = method.__doc__ or ""
        if name in OVERRIDDEN[cls.__name__]:
            assert len(doc) >= 300, (cls.__name__, name, len(doc))
            header = "Parameters" if _parameter_names(method, skip_self=True) else "Returns"
            assert header in doc, (cls.__name__, name)
            # scikit-learn's text, and fastnorm's note after its summary line
            sk_doc = inspect.getdoc(getattr(sk, name))
            assert sk_doc.splitlines()[0] == doc.splitlines()[0]
            assert "Parameters" in sk_doc and "fastnorm:" in doc
            assert len(doc) > len(getattr(sk, name).__doc__)
        else:  # inherited: scikit-learn's own docstring, unchanged
            assert inspect.getdoc(method) == inspect.getdoc(getattr(sk, name)), name
            assert doc.strip(), (cls.__name__, name)


def test_help_shows_the_docstrings(classes):
    cls, _ = classes
    for name in OVERRIDDEN[cls.__name__]:
        text = pydoc.render_doc(getattr(cls, name), renderer=pydoc.plaintext)
        assert "Parameters" in text and "fastnorm:" in text, name
    text = pydoc.render_doc(cls, renderer=pydoc.plaintext)
    assert "fastnorm notes" in text


def test_class_docstring_is_sklearns_with_fastnorm_notes(classes):
    cls, sk = classes
    doc = cls.__doc__
    assert "fastnorm" in doc
    assert len(doc) >= len(sk.__doc__)
    lines = inspect.cleandoc(doc).splitlines()
    assert lines[0] == inspect.cleandoc(sk.__doc__).splitlines()[0]  # the summary
    assert lines[2].startswith("**fastnorm notes.**")  # right after it
    assert f">>> from fastnorm.preprocessing import {cls.__name__}" in doc
    assert f"from sklearn.preprocessing import {cls.__name__}\n" not in doc
    assert _sections(doc) == _sections(sk.__doc__)
    for fact in ("float16", "array_api_dispatch", "Dask"):
        assert fact in doc, (cls.__name__, fact)


def test_class_notes_name_the_differences():
    assert "negative sample weights are refused" in fp.StandardScaler.__doc__
    doc = " ".join(fp.MinMaxScaler.__doc__.split())
    assert "``(x - data_min_) * scale_ + feature_range[0]``" in doc
    assert "``data_min_`` maps exactly to ``feature_range[0]``" in doc
    assert "cannot fit Dask" in " ".join(fp.RobustScaler.__doc__.split())
    for name in ("StandardScaler", "MaxAbsScaler", "RobustScaler"):
        assert "CSR/CSC" in getattr(fp, name).__doc__, name


@pytest.mark.parametrize("name", FUNCTIONS)
def test_functions_have_full_docstrings(name):
    function, sk = getattr(fp, name), getattr(skp, name)
    doc = function.__doc__
    assert len(doc) >= 300 and "Parameters" in doc and "Returns" in doc
    # fastnorm's own summary on top, then scikit-learn's sections and `out`
    assert doc.splitlines()[0] == inspect.getdoc(function.unchecked).splitlines()[0]
    sk_sections = _sections(sk.__doc__)
    assert _sections(doc) == sk_sections[sk_sections.index("Parameters"):]
    assert re.search(r"^\s*out : ndarray", doc, re.M)
    assert f">>> from fastnorm.preprocessing import {name}" in doc
    assert "from sklearn.preprocessing import" not in doc


@pytest.mark.parametrize("name", FUNCTIONS)
def test_function_docstrings_parse(name):
    function = getattr(fp, name)
    parsed = _parse(function.__doc__)
    assert [p.name for p in parsed["Parameters"]] == _parameter_names(function, skip_self=False)
    assert parsed["Returns"] and parsed["Examples"]
    assert "fastnorm only" in " ".join(parsed["Parameters"][-1].desc)


def test_class_and_method_docstrings_parse(classes):
    cls, sk = classes
    parsed = _parse(cls.__doc__)
    assert [p.name for p in parsed["Parameters"]] == _parameter_names(cls, skip_self=False)
    assert parsed["Attributes"] and parsed["Examples"]
    assert "fastnorm notes" in " ".join(parsed["Extended Summary"])
    assert parsed["Summary"] == _parse(sk.__doc__)["Summary"]
    for name in OVERRIDDEN[cls.__name__]:
        method = getattr(cls, name)
        parsed = _parse(method.__doc__)
        assert [p.name for p in parsed["Parameters"]] == \
            _parameter_names(method, skip_self=True), name
        assert parsed["Returns"], name
        assert "fastnorm:" in " ".join(parsed["Extended Summary"]), name


class _NumberChecker(doctest.OutputChecker):
    """doctest's checker, plus pytest's NUMBER option as scikit-learn's
    doctests use it: a float matches to the precision written in the
    expected output."""
    _number = re.compile(r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?")

    def check_output(self, want, got, optionflags):
        if super().check_output(want, got, optionflags):
            return True
        want_numbers, got_numbers = self._number.findall(want), self._number.findall(got)
        squeeze = [re.sub(r"\s+", "", part) for part in self._number.split(want)]
        if squeeze != [re.sub(r"\s+", "", part) for part in self._number.split(got)] \
                or len(want_numbers) != len(got_numbers):
            return False
        for w, g in zip(want_numbers, got_numbers):
            decimals = len(w.split(".")[1]) if "." in w and "e" not in w.lower() else None
            if decimals is None:
                if float(w) != float(g):
                    return False
            elif abs(float(w) - float(g)) > 0.5 * 10.0 ** -decimals + 1e-12:
                return False
        return True


def _run_examples(doc, name):
    test = doctest.DocTestParser().get_doctest(doc, {}, name, None, 0)
    assert test.examples, f"{name} has no examples"
    assert "fastnorm.preprocessing" in test.examples[0].source
    report = []
    runner = doctest.DocTestRunner(checker=_NumberChecker(),
                                   optionflags=doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS)
    result = runner.run(test, out=report.append)
    assert result.failed == 0, "".join(report)


@pytest.mark.parametrize("name", CLASSES + FUNCTIONS)
def test_examples_run_on_fastnorm(name):
    """The Examples, now importing from fastnorm, give the outputs they show."""
    _run_examples(getattr(fp, name).__doc__, name)


@pytest.mark.parametrize("module", ["fastnorm", "fastnorm.preprocessing", "fastnorm.stats",
                                    "fastnorm.functional", "fastnorm.layers"])
def test_dir_lists_only_public_names(module):
    mod = importlib.import_module(module)
    assert [n for n in dir(mod) if not n.startswith("_")] == sorted(mod.__all__)
    for name in mod.__all__:
        assert hasattr(mod, name), name
    assert "__doc__" in dir(mod) and "__name__" in dir(mod)


def test_preprocessing_holds_no_helper_under_a_sklearn_name():
    assert not hasattr(fp, "as_float_array")  # sklearn.utils.as_float_array is another thing
    assert "np" not in dir(fp) and "check_axis" not in dir(fp)


def _expected_version():
    try:
        return distribution_version("fastnorm")
    except PackageNotFoundError:
        return fastnorm.__version__


def test_dunder_version():
    assert fastnorm.__version__ == _expected_version()
    assert re.match(r"\d+(\.\d+)*", fastnorm.__version__)


def test_python_m_fastnorm_version():
    res = subprocess.run([sys.executable, "-m", "fastnorm", "--version"],
                         capture_output=True, text=True, check=True, timeout=120)
    assert res.stdout.strip() == f"fastnorm {_expected_version()}"


def test_console_script_version():
    # installing the project (as README says) installs the script
    script = Path(sysconfig.get_path("scripts")) / "fastnorm"
    assert script.exists(), f"the fastnorm console script is not installed ({script})"
    res = subprocess.run([str(script), "--version"], capture_output=True, text=True,
                         check=True, timeout=120)
    assert res.stdout.strip() == f"fastnorm {_expected_version()}"
