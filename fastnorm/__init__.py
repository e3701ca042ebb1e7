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

__version__ = "0.1.0"
__all__ = ["functional", "layers", "preprocessing", "stats", "config_context", "get_config",
           "set_config"]
