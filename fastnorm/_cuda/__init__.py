"""GPU path of fastnorm: CUDA kernel sources (*.cu, package data), their
loader (`_loader`), launch helpers (`_launch`) and a compile check
(`python -m fastnorm._cuda.check`).

Nothing here imports CuPy at import time: `import fastnorm` works without it.
"""
