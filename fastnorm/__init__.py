"""fastnorm: fast, trustworthy normalization for NumPy arrays.

Two dialects over one set of multithreaded kernels:
``fastnorm.preprocessing`` speaks scikit-learn's (``StandardScaler``,
``scale``, ...), ``fastnorm.functional`` PyTorch's (``layer_norm``,
``rms_norm`` and their backward), and ``fastnorm.stats`` gives the mergeable
statistics every fit is built on.
"""
from . import functional, preprocessing, stats
from ._config import config_context, get_config, set_config

__version__ = "0.1.0"
__all__ = ["functional", "preprocessing", "stats", "config_context", "get_config", "set_config"]
