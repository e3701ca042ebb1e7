"""fastnorm: fast, trustworthy normalization for NumPy arrays.

Two dialects over one set of multithreaded kernels:
``fastnorm.preprocessing`` speaks scikit-learn's (``scale``,
``minmax_scale``, ...), ``fastnorm.stats`` gives the mergeable statistics
every fit is built on.
"""
from . import preprocessing, stats
from ._config import config_context, get_config, set_config

__version__ = "0.1.0"
__all__ = ["preprocessing", "stats", "config_context", "get_config", "set_config"]
