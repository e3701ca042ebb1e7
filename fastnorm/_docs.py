"""What help() and dir() show: scikit-learn's docstrings on fastnorm's
classes and functions, with fastnorm's differences, and public-only dir().

The one place that writes docstrings from scikit-learn's: each class and
function says in the code only what fastnorm does differently, and
`document_class` / `document_function` carry scikit-learn's text (summary,
parameters, attributes, notes, examples) over around it. Nothing here
imports scikit-learn or the rest of fastnorm: the scikit-learn namesakes
come from the callers.
"""
import inspect
import re
import textwrap

__all__ = ["document_class", "document_function", "paragraph", "public_dir"]

_INDENT = "    "

# an example's import of scikit-learn's name(s), e.g. ">>> from sklearn.preprocessing import X"
_SKLEARN_IMPORT = re.compile(r"^(?P<lead>\s*>>> from )(?P<module>sklearn(?:\.\w+)*)"
                             r"(?P<mid> import )(?P<names>[\w, ]+)$")


def _lines(doc):
    """A docstring as cleaned lines (inspect.cleandoc), [] for none."""
    return inspect.cleandoc(doc).split("\n") if doc and doc.strip() else []


def _as_docstring(lines):
    """Cleaned lines back into a docstring indented as in source code (body
    lines indented four spaces, closing on an indented line), the shape
    scikit-learn's own __doc__ has."""
    body = [(_INDENT + line) if line.strip() else "" for line in lines[1:]]
    return "\n".join([lines[0], *body, _INDENT]) if body else lines[0]


def _is_section_header(lines, i):
    """Whether lines[i] is a numpydoc section title (underlined by the next line)."""
    title = lines[i].strip()
    return (bool(title) and i + 1 < len(lines)
            and set(lines[i + 1].strip()) == {"-"} and len(lines[i + 1].strip()) == len(title))


def _section_bounds(lines, title):
    """(start, end) of the section `title` (its header line, and the first
    line of the next section or len(lines)), or None."""
    for i in range(len(lines)):
        if lines[i].strip() == title and _is_section_header(lines, i):
            end = next((j for j in range(i + 2, len(lines)) if _is_section_header(lines, j)),
                       len(lines))
            return i, end
    return None


def _first_section(lines):
    """Index of the first numpydoc section header, or len(lines)."""
    return next((i for i in range(len(lines)) if _is_section_header(lines, i)), len(lines))


def _insert_after_summary(lines, notes):
    """lines with `notes` (cleaned lines) as a paragraph of the extended
    summary, right after the summary paragraph (before any section)."""
    if not notes:
        return lines
    end_summary = next((i for i, line in enumerate(lines) if not line.strip()), len(lines))
    end_summary = min(end_summary, _first_section(lines))
    rest = lines[end_summary:]
    while rest and not rest[0].strip():
        rest = rest[1:]
    return [*lines[:end_summary], "", *notes, *([""] if rest else []), *rest]


def _fastnorm_imports(lines, module, names):
    """lines with every example import of scikit-learn names that `module`
    provides (all of `names`) rewritten to import them from `module`."""
    out = []
    for line in lines:
        m = _SKLEARN_IMPORT.match(line)
        if m:
            imported = [n.strip() for n in m["names"].split(",") if n.strip()]
            if imported and all(n in names for n in imported):
                line = f"{m['lead']}{module}{m['mid']}{m['names']}"
        out.append(line)
    return out


def paragraph(text, width=76):
    """`text` (one paragraph, any line breaks) filled to `width` columns."""
    return textwrap.fill(" ".join(text.split()), width)


def _sklearn_parent(cls):
    """The scikit-learn class that `cls` is the drop-in for: the first
    scikit-learn class in its MRO."""
    return next(k for k in cls.__mro__[1:] if k.__module__.startswith("sklearn."))


def document_class(cls, notes, method_notes=None, *, module, names=()):
    """Give `cls` scikit-learn's docstrings with fastnorm's notes.

    The class docstring becomes its scikit-learn parent's, with `notes` as a
    paragraph right after the summary line (numpydoc's extended summary, so
    every section still parses) and the Examples importing from `module`
    (the public module users import `cls` from) wherever they import only
    names it provides (`names` and the class name) from scikit-learn. Every
    method that `cls` defines itself without a docstring gets the parent
    method's, with ``method_notes[name]`` (if any) after its summary line.
    The docstrings are set on the objects in the class ``__dict__`` (the
    outermost decorator's wrappers), which is what help() and inspect read.
    """
    parent = _sklearn_parent(cls)
    names = set(names) | {cls.__name__}
    method_notes = dict(method_notes or {})
    unknown = set(method_notes) - set(vars(cls))
    if unknown:
        raise ValueError(f"{cls.__name__} defines no method {sorted(unknown)}")

    lines = _insert_after_summary(_lines(parent.__doc__), _lines(notes))
    cls.__doc__ = _as_docstring(_fastnorm_imports(lines, module, names))

    for name, member in vars(cls).items():
        own = getattr(member, "__doc__", None)
        inherited = getattr(getattr(parent, name, None), "__doc__", None)
        if not callable(member) or (own and own.strip()) or not (inherited and inherited.strip()):
            continue
        lines = _insert_after_summary(_lines(inherited), _lines(method_notes.get(name)))
        member.__doc__ = _as_docstring(_fastnorm_imports(lines, module, names))
    return cls


def document_function(function, sklearn_function, extra_parameters="", *, module, names=()):
    """Give `function` (fastnorm's namesake of `sklearn_function`) a full docstring.

    Its own docstring (summary and what fastnorm does differently) stays on
    top; scikit-learn's sections follow, from Parameters to the end, with
    `extra_parameters` (numpydoc entries for fastnorm's own parameters)
    appended to Parameters and the Examples importing from `module` the
    `names` (plus the function's name) it provides. Idempotent.
    """
    own = _lines(function.__doc__)
    sk = _lines(sklearn_function.__doc__)
    if _section_bounds(own, "Parameters") is not None:  # already documented
        return function
    start = _first_section(sk)
    sections = sk[start:]
    extra = textwrap.dedent(extra_parameters).strip("\n").split("\n") \
        if extra_parameters.strip() else []
    if extra:
        bounds = _section_bounds(sections, "Parameters")
        if bounds is None:
            sections = ["Parameters", "----------", *extra, "", *sections]
        else:
            end = bounds[1]
            head = sections[:end]
            while head and not head[-1].strip():
                head = head[:-1]
            sections = [*head, "", *extra, *([""] if end < len(sections) else []),
                        *sections[end:]]
    names = set(names) | {function.__name__}
    lines = [*own, "", *_fastnorm_imports(sections, module, names)]
    function.__doc__ = _as_docstring(lines)
    return function


def public_dir(namespace):
    """A module ``__dir__`` (PEP 562) for the module whose globals are
    `namespace`: its public names (``__all__``) and its dunder attributes,
    not the helpers and modules it imports."""
    def __dir__():
        return sorted(set(namespace["__all__"])
                      | {n for n in namespace if n.startswith("__") and n.endswith("__")})
    return __dir__
