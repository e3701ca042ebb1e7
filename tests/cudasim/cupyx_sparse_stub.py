"""A stand-in for the part of `cupyx.scipy.sparse` that fastnorm uses: CSR
and CSC matrices whose data, indices and indptr are cudasim device arrays
(tests/cudasim/cupy_stub), installed as `cupyx.scipy.sparse` by the GPU
tests when no GPU is present.

It offers a subset of what CuPy's matrices have, nothing more, with CuPy's
behaviour where it differs from SciPy's, so that code which passes here
does not fail on a GPU for want of a method:
- indices and indptr are int32 (CuPy casts them so); data is bool, float32,
  float64 or complex (no float16, no integers: a ValueError, as in CuPy);
- no `check_format` (CuPy has none), and `.device` raises
  NotImplementedError (CuPy's sparse matrices do not implement it: read
  `X.data.device`);
- `transpose()` (`.T`) shares data, indices and indptr (CSR <-> CSC);
  `tocsr()`/`tocsc()` of the other format build new arrays; `copy()`
  copies all three;
- implicit conversion to NumPy (np.asarray) is a TypeError here (CuPy would
  make a useless object array), so that a host copy behind the caller's
  back fails in CI.
Conversions and sum_duplicates run through SciPy on the host: they are
CuPy's own (cuSPARSE) work on a GPU, not fastnorm's.

Test-only: never imported by fastnorm itself.
"""
import numpy as np
import scipy.sparse as _sp

from . import cupy_stub


class spmatrix:
    """Base of the stand-in's sparse matrices (cupyx.scipy.sparse.spmatrix)."""

    __array_priority__ = 101

    def __array__(self, dtype=None, copy=None):
        raise TypeError("cudasim: implicit conversion of a CuPy sparse matrix to NumPy; "
                        "use .get() to copy it to the host explicitly")

    @property
    def device(self):  # as CuPy's spmatrix: not implemented
        raise NotImplementedError

    def __len__(self):
        raise TypeError("sparse matrix length is ambiguous; use getnnz() or shape[0]")

    ndim = property(lambda self: 2)
    T = property(lambda self: self.transpose())

    def asformat(self, format):
        if format is None or format == self.format:
            return self
        return getattr(self, "to" + format)()


spmatrix.__module__ = "cupyx.scipy.sparse._base"


class _compressed_sparse_matrix(spmatrix):
    format = None
    _scipy_class = None

    def __init__(self, arg1, shape=None, dtype=None, copy=False):
        if issparse(arg1):
            x = arg1.asformat(self.format)
            data, indices, indptr = x.data, x.indices, x.indptr
            if arg1.format != self.format:
                copy = False
            shape = arg1.shape if shape is None else shape
        elif _sp.issparse(arg1):  # from the host, as CuPy converts scipy matrices
            x = arg1.asformat(self.format)
            data, indices, indptr = (cupy_stub.array(a) for a in (x.data, x.indices, x.indptr))
            copy = False
            shape = arg1.shape if shape is None else shape
        elif isinstance(arg1, tuple) and len(arg1) == 3:
            data, indices, indptr = arg1
            if not all(isinstance(a, cupy_stub.ndarray) and a.ndim == 1
                       for a in (data, indices, indptr)):
                raise ValueError("data, indices, and indptr should be 1-D")
            if len(data) != len(indices):
                raise ValueError("indices and data should have the same size")
        else:  # CuPy takes more (a shape, a dense array, (data, (row, col))): unused here
            raise ValueError("cudasim: unsupported initializer format")
        dtype = data.dtype if dtype is None else np.dtype(dtype)
        if dtype.char not in "?fdFD":
            raise ValueError("Only bool, float32, float64, complex64 and complex128 "
                             "are supported")
        self.data = data.astype(dtype, copy=copy)
        self.indices = indices.astype("i", copy=copy)
        self.indptr = indptr.astype("i", copy=copy)
        if shape is None:
            shape = self._swap(len(indptr) - 1, int(indices.max()) + 1)
        shape = int(shape[0]), int(shape[1])
        if len(indptr) != self._swap(*shape)[0] + 1:
            raise ValueError(f"index pointer size ({len(indptr)}) should be "
                             f"({self._swap(*shape)[0] + 1})")
        self._shape = shape

    shape = property(lambda self: self._shape)
    dtype = property(lambda self: self.data.dtype)
    nnz = property(lambda self: self.data.size)
    size = property(lambda self: self.data.size)  # CuPy's: the stored values

    def getnnz(self, axis=None):
        if axis is not None:
            raise ValueError
        return self.data.size

    @property
    def has_canonical_format(self):
        if self.data.size == 0:
            self._has_canonical_format = True
        elif not hasattr(self, "_has_canonical_format"):
            self._has_canonical_format = bool(self.get().has_canonical_format)
        return self._has_canonical_format

    @has_canonical_format.setter
    def has_canonical_format(self, value):
        self._has_canonical_format = bool(value)

    def sum_duplicates(self):
        """In place, as CuPy's (sorted indices, duplicates added)."""
        if self.has_canonical_format:
            return
        host = self.get()
        host.sum_duplicates()
        self.data, self.indices, self.indptr = (
            cupy_stub.array(a, dtype=d) for a, d in
            ((host.data, self.dtype), (host.indices, "i"), (host.indptr, "i")))
        self.has_canonical_format = True

    def get(self, stream=None):
        """A copy on the host: the SciPy matrix of the same format."""
        return self._scipy_class((self.data.get(), self.indices.get(), self.indptr.get()),
                                 shape=self._shape)

    def copy(self):
        return type(self)((self.data.copy(), self.indices.copy(), self.indptr.copy()),
                          shape=self.shape, dtype=self.dtype)

    def astype(self, t):
        return type(self)((self.data.astype(t), self.indices.copy(), self.indptr.copy()),
                          shape=self.shape)

    def transpose(self, axes=None, copy=False):
        if axes is not None:
            raise ValueError("Sparse matrices do not support an 'axes' parameter")
        other = csc_matrix if self.format == "csr" else csr_matrix
        trans = other((self.data, self.indices, self.indptr), shape=self.shape[::-1],
                      copy=copy)
        trans.has_canonical_format = self.has_canonical_format
        return trans

    def _converted(self, cls, copy):
        if cls is type(self):
            return self.copy() if copy else self
        return cls(self.get().asformat(cls.format))

    def tocsr(self, copy=False):
        return self._converted(csr_matrix, copy)

    def tocsc(self, copy=False):
        return self._converted(csc_matrix, copy)

    def __repr__(self):
        return f"<cudasim {self.format}_matrix {self.shape} {self.dtype}, {self.nnz} stored>"


class csr_matrix(_compressed_sparse_matrix):
    format = "csr"
    _scipy_class = _sp.csr_matrix

    def _swap(self, x, y):
        return x, y


class csc_matrix(_compressed_sparse_matrix):
    format = "csc"
    _scipy_class = _sp.csc_matrix

    def _swap(self, x, y):
        return y, x


_compressed_sparse_matrix.__module__ = "cupyx.scipy.sparse._compressed"
csr_matrix.__module__ = "cupyx.scipy.sparse._csr"
csc_matrix.__module__ = "cupyx.scipy.sparse._csc"


def issparse(x):
    return isinstance(x, spmatrix)


isspmatrix = issparse
