"""fastnorm: fast, trustworthy normalization for NumPy arrays.

Two dialects over one set of multithreaded kernels:
``fastnorm.preprocessing`` speaks scikit-learn's (``StandardScaler``,
``scale``, ...), ``fastnorm.functional`` PyTorch's (``batch_norm``,
``layer_norm``, ``group_norm``, ... and their backward) with stateful
``fastnorm.layers``, and ``fastnorm.stats`` gives the mergeable statistics
every fit is built on.
"""
from . import functional, layers, preprocessing, stats
from ._config import config_context, get_config, set_config
from ._docs import public_dir as _public_dir


def _version():
    """The installed distribution's version (one source: pyproject.toml)."""
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version("fastnorm")
    except PackageNotFoundError:  # a source tree that was never installed
        return "0+unknown"


__version__ = _version()
__all__ = ["functional", "layers", "preprocessing", "stats", "config_context", "get_config",
           "set_config"]
__dir__ = _public_dir(globals())  # dir(): the public names (__all__) only
