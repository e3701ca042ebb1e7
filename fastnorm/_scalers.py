"""scikit-learn's scalers with fastnorm's kernels doing the arithmetic.

Each class subclasses its scikit-learn namesake, so constructor parameters,
defaults, parameter validation, tags, feature names, ``set_output``,
``get_feature_names_out`` and ``isinstance`` checks are scikit-learn's own;
only the passes over the data are replaced:

- fitting computes its statistics with one multithreaded pass
  (`fastnorm.stats`, float64 accumulation, exact Chan merging across
  ``partial_fit`` calls), without scikit-learn's float64 copy of the input;
- transforms are one fused pass ``(x - shift) * scale + offset`` computed in
  float64 and written straight into the output (no copy-then-modify), which
  also spots infinities on the way.

Dask arrays and DataFrames are fitted chunk by chunk where they live and
transformed lazily (see `fastnorm._dask`); RobustScaler cannot fit them.

Input validation goes through scikit-learn's ``validate_data`` except the
finiteness scan of dense input, which fastnorm's own passes do for free;
errors carry scikit-learn's messages. Sparse CSR/CSC input runs on
fastnorm's kernels over the sparse structure (``ext/_sparse.pyx``); the
quantiles of sparse columns sort the explicit values and count the
zeros in. Differences from scikit-learn: negative sample weights
are refused; duplicate sparse entries are summed first (as scipy reads them).
"""
import functools

import numpy as np
import sklearn
import sklearn.preprocessing as skp
from sklearn.base import _fit_context
from sklearn.utils.validation import _check_sample_weight, check_array, check_is_fitted, validate_data

from . import _backend, _dask, stats
from ._common import (
    FLOAT_DTYPES,
    _canonical,
    _for_kernels,
    _for_sklearn,
    _minmax_shift,
    _scale_sparse_cols,
)
from ._docs import document_class, paragraph
from ._functions import normalize  # Normalizer is this function
from ._validation import as_float_array, check_sample_weight, check_sparse, warn_on_overflow

__all__ = ["StandardScaler", "MinMaxScaler", "MaxAbsScaler", "RobustScaler", "Normalizer"]

def _sklearn_for_other_namespaces(method):
    """Send input of other array namespaces to the scikit-learn parent's
    method of the same name, which gives exactly what scikit-learn gives;
    so does every method of a transformer fitted that way (scikit-learn
    then checks that the namespaces match)."""
    name = method.__name__
    fits = name in ("fit", "partial_fit")

    @functools.wraps(method)
    def wrapper(self, X, *args, **kwargs):
        _check_fitted_library(self, X, first_fit=name == "fit")
        to_sklearn = _for_sklearn(X) or (
            not fits and getattr(self, "_fitted_by_sklearn", False)
            and sklearn.get_config()["array_api_dispatch"])
        if fits:
            self._fitted_by_sklearn = to_sklearn
        if to_sklearn:
            parent = next(k for k in type(self).__mro__ if k.__module__.startswith("sklearn."))
            return getattr(parent, name)(self, X, *args, **kwargs)
        return method(self, X, *args, **kwargs)
    return wrapper


# the fitted arrays, one of which tells where a transformer was fitted
_FITTED_ARRAYS = ("mean_", "scale_", "data_min_", "max_abs_", "center_")


def _check_fitted_library(estimator, X, first_fit):
    """A transformer fitted on one side (NumPy or CuPy arrays) takes input of
    that side only: fastnorm does not copy between host and device."""
    if first_fit:
        return
    fitted = next((v for v in map(estimator.__dict__.get, _FITTED_ARRAYS) if v is not None),
                  None)
    if (fitted is None or type(X) is type(fitted) is np.ndarray  # the common case first
            or not hasattr(X, "shape") or _dask.is_dask_collection(X)):
        return
    have, got = _backend.array_library(fitted), _backend.array_library(X)
    if have == got == "cupy" and _backend.device_id(fitted) != _backend.device_id(X):
        raise TypeError(f"{type(estimator).__name__} was fitted on GPU "
                        f"{_backend.device_id(fitted)} but X is on GPU {_backend.device_id(X)}; "
                        "fastnorm does not copy between devices")
    if have != got:
        raise TypeError(f"{type(estimator).__name__} was fitted on {have} arrays (its fitted "
                        f"attributes live {'on the GPU' if have == 'cupy' else 'in host memory'}) "
                        f"but X is a {got} array; fastnorm does not copy between host and "
                        "device: convert X, or fit on the same kind of array")


def _on_gpu(X):
    return _backend.array_library(X) == "cupy"


def _gpu_input(estimator, X, reset, **sparse_params):
    """A CuPy X validated as validate_data would (feature count and names
    bookkeeping, 2-D, non-empty, float16/32/64; integers to float64), on its
    device; a CuPy sparse matrix as validate_data(**sparse_params) would
    check a SciPy one (see check_sparse)."""
    if _backend.is_sparse(X):
        return check_sparse(X, estimator, reset=reset, dtype=FLOAT_DTYPES, **sparse_params)
    if estimator is not None:
        validate_data(estimator, X, reset=reset, skip_check_array=True)
    return as_float_array(X, "X", gpu_for="fastnorm.preprocessing")[0]


def _inf_error(X):
    return ValueError(f"Input X contains infinity or a value too large for {X.dtype!r}.")


def _raise_if_inf(X):
    """The finiteness check scikit-learn's validate_data does, in one threaded scan."""
    mn, mx, _ = _backend.ops_for(X).min_max(_for_kernels(X), 0)
    if bool(np.isposinf(mx).any()) or bool(np.isneginf(mn).any()):
        raise _inf_error(X)


def _validated(estimator, X, *, reset, copy, **kwargs):
    """(X as a 2-D float array, array to write the result into).

    Like validate_data(copy=copy, force_writeable=True), but without the
    copy: the result goes into a new array when X must not be touched and
    into X itself when the caller allows it (copy=False on a writeable
    float array) or X is already a private converted copy.
    """
    if _on_gpu(X):
        Xc = _gpu_input(estimator, X, reset, ensure_all_finite=False, **kwargs)
        if _backend.is_sparse(Xc):
            return _sparse_without_inf(Xc), None
        in_place = Xc is not X or not copy
        return Xc, (Xc if in_place else _backend.namespace(Xc).empty_like(Xc))
    Xc = validate_data(estimator, X, reset=reset, dtype=FLOAT_DTYPES,
                       ensure_all_finite=False, **kwargs) if estimator is not None else \
        check_array(X, dtype=FLOAT_DTYPES, ensure_all_finite=False, **kwargs)
    if _backend.is_sparse(Xc):
        return _sparse_without_inf(Xc), None
    # private: a buffer validation made that nobody else sees (a DataFrame's
    # values may be a view of the frame, so only lists and converted arrays)
    private = isinstance(X, (list, tuple)) or (
        isinstance(X, np.ndarray) and not np.may_share_memory(Xc, X))
    in_place = Xc.flags.writeable and (private or not copy)
    return Xc, (Xc if in_place else np.empty_like(Xc, order="K"))


def _sparse_without_inf(X):
    """X, or a ValueError when its stored values hold an infinity."""
    if bool(_backend.namespace(X.data).isinf(X.data).any()):
        raise _inf_error(X)
    return X


def _skips_validation(estimator, X):
    """Whether X may skip scikit-learn's input validation in a fitted
    transformer's transform: a 2-D float32/float64 NumPy array with rows and
    the fitted number of features, given to an estimator fitted without
    feature names. Every check validate_data makes then holds, with nothing
    to convert or warn about; the kernels still find infinities. (A single
    row costs ~20 us this way against scikit-learn's ~170 us of checks.)"""
    return (type(X) is np.ndarray and X.ndim == 2 and X.shape[0] > 0
            and (X.dtype == np.float64 or X.dtype == np.float32)
            and X.shape[1] == estimator.__dict__.get("n_features_in_")
            and "feature_names_in_" not in estimator.__dict__)


def _fit_input(estimator, X, reset, **kwargs):
    """validate_data(estimator, X, reset=reset, dtype=FLOAT_DTYPES, **kwargs),
    its bookkeeping done directly for a 2-D float32/float64 NumPy array with
    rows and columns, in which scikit-learn's checks (~100 us) would find
    nothing to convert or refuse (dense infinities are found by the kernels)."""
    if _on_gpu(X):
        return _gpu_input(estimator, X, reset, **kwargs)
    plain = (type(X) is np.ndarray and X.ndim == 2 and X.shape[0] > 0 and X.shape[1] > 0
             and (X.dtype == np.float64 or X.dtype == np.float32))
    if plain and reset:
        estimator.n_features_in_ = X.shape[1]
        estimator.__dict__.pop("feature_names_in_", None)  # as validate_data
        return X
    if plain and _skips_validation(estimator, X):
        return X
    return validate_data(estimator, X, reset=reset, dtype=FLOAT_DTYPES, **kwargs)


def _transform_input(estimator, X, copy, **kwargs):
    """(X validated as a fitted transformer's input, array to write into)."""
    if _skips_validation(estimator, X):
        return X, (X if not copy and X.flags.writeable else np.empty_like(X, order="K"))
    check_is_fitted(estimator)
    return _validated(estimator, X, reset=False, copy=copy, **kwargs)


def _affine(X, out, shift=0.0, scale=1.0, offset=0.0):
    """out = (X - shift) * scale + offset per column; ValueError on inf in X."""
    if X.dtype == np.float16 and not _on_gpu(X):  # computed in float32, stored in float16
        out[...] = _affine(_for_kernels(X), None, shift, scale, offset)
        return out
    if out is None:
        out = np.empty_like(X, order="K")
    n, xp = X.shape[1], _backend.namespace(X)
    shift, scale, offset = (xp.full(n, a, dtype=np.float64) if getattr(a, "ndim", 0) == 0
                            else a for a in (shift, scale, offset))
    if out is X:  # in place: refuse inf before writing anything
        _raise_if_inf(X)
    if _backend.ops_for(X).affine(X, 0, shift, scale, offset, out):
        raise _inf_error(X)
    return out


def _fit_min_max(estimator, X, reset):
    """Per-feature NaN-ignoring (min, max, count), the number of rows and the
    float dtype of dense (NumPy or Dask) X; ValueError on an infinity."""
    if _dask.is_dask_collection(X):
        X, columns = _dask.as_dask_array(X)
        _dask.check_features(estimator, X, columns, reset=reset)
        mn, mx, count, n_rows = _dask.chunk_min_max(X)
        dtype = _dask.float_dtype(X.dtype)
    else:
        X = _fit_input(estimator, X, reset=reset, ensure_all_finite=False)
        mn, mx, count = _backend.ops_for(X).min_max(_for_kernels(X), 0)
        n_rows, dtype = X.shape[0], X.dtype
    if bool(np.isposinf(mx).any()) or bool(np.isneginf(mn).any()):
        raise ValueError(f"Input X contains infinity or a value too large for {dtype!r}.")
    return mn, mx, count, n_rows, dtype


def _lazy_for_dask(method):
    """An inverse_transform that maps Dask input chunk by chunk, lazily
    (through the fitted transformer itself: see fastnorm._dask.lazy_transform;
    transform gets the same from _dask_ahead_of_set_output)."""
    @functools.wraps(method)
    def wrapper(self, X, *args, **kwargs):
        if _dask.is_dask_collection(X):
            return _dask.lazy_transform(self, X, method.__name__)
        return method(self, X, *args, **kwargs)
    return wrapper


def _dask_ahead_of_set_output(cls):
    """Class decorator: Dask input to transform and fit_transform goes to
    fastnorm._dask outside scikit-learn's set_output wrapper, which would
    gather the lazy result into an in-memory DataFrame (lazy_transform
    honours the output config itself, lazily)."""
    transform, fit_transform = cls.transform, cls.fit_transform

    @functools.wraps(transform)
    def dask_first_transform(self, X, *args, **kwargs):
        if _dask.is_dask_collection(X):
            return _dask.lazy_transform(self, X, "transform")
        return transform(self, X, *args, **kwargs)

    @functools.wraps(fit_transform)
    def dask_first_fit_transform(self, X, y=None, **fit_params):
        if _dask.is_dask_collection(X):
            _dask.transform_output(self)  # an output config Dask cannot honour: before fitting
            return self.fit(X, y, **fit_params).transform(X)
        return fit_transform(self, X, y, **fit_params)

    cls.transform, cls.fit_transform = dask_first_transform, dask_first_fit_transform
    return cls


def _is_constant_feature(var, mean, n_samples):
    """scikit-learn's test for a variance that is only rounding noise."""
    eps = np.finfo(np.float64).eps
    upper_bound = n_samples * eps * var + (n_samples * mean * eps) ** 2
    return var <= upper_bound


def _zero_scale_to_one(scale, constant_mask=None):
    """scikit-learn's _handle_zeros_in_scale for arrays (returns a copy)."""
    scale = _backend.namespace(scale).array(scale, copy=True)
    if constant_mask is None:
        constant_mask = scale < 10 * np.finfo(scale.dtype).eps
    scale[constant_mask] = 1.0
    return scale


@_dask_ahead_of_set_output
class StandardScaler(skp.StandardScaler):
    """Standardize features by removing the mean and scaling to unit variance.

    Drop-in for sklearn.preprocessing.StandardScaler (same parameters,
    attributes and results, dense input on fastnorm's multithreaded
    kernels). Negative sample weights are refused. A fit keeps, privately,
    what rounding mean_ to float64 dropped where that reaches the outputs'
    digits (a mean far from zero for its spread), and float64 transforms
    centre on both: 1e8 + N(0, 1) comes out within a few ulps of the exact
    z-scores (scikit-learn's, which centre on mean_ alone, are ~1e-8 off).
    """

    @_fit_context(prefer_skip_nested_validation=True)
    @_sklearn_for_other_namespaces
    def partial_fit(self, X, y=None, sample_weight=None):
        first_call = not hasattr(self, "n_samples_seen_")
        self.__dict__.pop("_mean_lo", None)  # kept by a first fit only (in memory or Dask)
        if _dask.is_dask_collection(X):
            callbacks = self._begin_fit_task(X, y, sample_weight)
            self._partial_fit_dask(X, sample_weight, first_call)
        else:
            X = _fit_input(self, X, reset=first_call, accept_sparse=("csr", "csc"),
                           # sparse: scikit-learn's scan of X.data is cheap
                           ensure_all_finite="allow-nan" if _backend.is_sparse(X) else False)
            callbacks = self._begin_fit_task(X, y, sample_weight)
            self._partial_fit_in_memory(X, sample_weight, first_call)
        callbacks.call_on_fit_task_end(estimator=self, X=X, y=y,
                                       metadata={"sample_weight": sample_weight},
                                       reconstruction_attributes={})
        return self

    def _begin_fit_task(self, X, y, sample_weight):
        """scikit-learn's callbacks (set_callbacks): one fit task per partial_fit."""
        callbacks = self._init_callback_context()
        callbacks.call_on_fit_task_begin(estimator=self, X=X, y=y,
                                         metadata={"sample_weight": sample_weight})
        return callbacks

    def _partial_fit_in_memory(self, X, sample_weight, first_call):
        sparse = _backend.is_sparse(X)
        dtype = X.dtype
        X = _for_kernels(X)
        if sample_weight is not None and _on_gpu(X):
            sample_weight = check_sample_weight(sample_weight, X.shape[0],
                                                xp=_backend.namespace(X))
        elif sample_weight is not None:
            sample_weight = _check_sample_weight(sample_weight, X, dtype=X.dtype,
                                                 ensure_non_negative=True)
        if sparse and self.with_mean:
            raise ValueError("Cannot center sparse matrices: pass `with_mean=False` "
                             "instead. See docstring for motivation and alternatives.")

        mean_lo = None
        if sparse:
            count, mean, m2 = _backend.ops_for(X.data).sparse_col_moments(_canonical(X),
                                                                          sample_weight)
        elif not self.with_mean and not self.with_std:
            # only counts are kept: one min/max scan (it also finds infinities)
            mn, mx, count = _backend.ops_for(X).min_max(X, 0)
            if bool(np.isposinf(mx).any()) or bool(np.isneginf(mn).any()):
                raise _inf_error(X)
            mean = m2 = None
        else:
            m, mean_lo = stats._moments(X, axis=0, sample_weight=sample_weight,
                                        ignore_nan=True, mean_lo=first_call and self.with_mean)
            if not np.isfinite(m.mean[m.count > 0]).all():
                _raise_if_inf(X)
            count, mean, m2 = m.count, m.mean, m.m2
        self._merge_moments(first_call, count, mean, m2, dtype, sparse,
                            weighted=sample_weight is not None)
        if mean_lo is not None:
            self._keep_mean_lo(mean_lo, count, m2)
        return self

    def _keep_mean_lo(self, mean_lo, count, m2):
        """After a first fit: mean_ is the mean rounded to float64; keep its
        low part (what that rounding dropped), with the mean_ it belongs to,
        for float64 transforms (see _mean_low_part). Only where it reaches
        the outputs' digits: more than half an ulp of the spread, i.e. for a
        mean far from zero for its spread; otherwise transform pays nothing.
        Later partial_fit calls drop it (their merge keeps mean_ alone)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            spread = np.sqrt(m2 / count)
        if np.any(np.abs(mean_lo) > 0.5 * np.finfo(np.float64).eps * spread):
            self._mean_lo = (self.mean_.copy(), mean_lo)

    def _partial_fit_dask(self, X, sample_weight, first_call):
        if sample_weight is not None:
            raise NotImplementedError("sample_weight is not supported with Dask input")
        X, columns = _dask.as_dask_array(X)
        _dask.check_features(self, X, columns, reset=first_call)
        keep_lo = first_call and self.with_mean
        count, mean, m2, *lo = _dask.chunk_moments(X, mean_lo=keep_lo)
        dtype = _dask.float_dtype(X.dtype)
        if not np.isfinite(mean[count > 0]).all():  # NaNs are skipped: this is an inf
            raise ValueError(f"Input X contains infinity or a value too large for {dtype!r}.")
        self._merge_moments(first_call, count, mean, m2, dtype, sparse=False, weighted=False)
        if keep_lo:  # as in memory: the mean's low part for float64 transforms
            self._keep_mean_lo(lo[0], count, m2)
        return self

    def _merge_moments(self, first_call, count, mean, m2, dtype, sparse, weighted):
        """Fold this batch's per-feature (count, mean, M2) into the fitted state."""
        n_features, xp = count.shape[0], _backend.namespace(count)
        seen = xp.zeros(n_features) if first_call else xp.broadcast_to(
            xp.asarray(self.n_samples_seen_, dtype=np.float64), (n_features,))
        if not self.with_mean and not self.with_std:
            # as scikit-learn: non-NaN values, weighted only for sparse input
            self.mean_ = self.var_ = self.scale_ = None
            self._set_n_samples_seen((seen + count).astype(dtype if weighted else np.int64))
            return self

        # a feature with no value yet contributes nothing (its NaN mean must not leak)
        batch = stats.Moments(count, np.where(count > 0, mean, 0.0), m2)
        if first_call:  # merging into empty moments is the identity: skip its cost
            total = batch
        else:
            m2_seen = np.zeros(n_features) if self.var_ is None else self.var_ * seen
            total = stats.Moments(seen, self.mean_, m2_seen).merge(batch)
        with np.errstate(invalid="ignore", divide="ignore"):
            self.mean_ = np.where(total.count > 0, total.mean, np.nan)
            self.var_ = total.m2 / total.count if self.with_std else None
        self._set_n_samples_seen(total.count.astype(dtype) if sparse else total.count)
        warn_on_overflow("mean and variance", self.mean_, self.var_)
        if self.with_std:
            constant_mask = _is_constant_feature(self.var_, self.mean_, self.n_samples_seen_)
            self.scale_ = _zero_scale_to_one(np.sqrt(self.var_), constant_mask)
        else:
            self.scale_ = None
        return self

    def _set_n_samples_seen(self, count):
        # scikit-learn keeps one number while every feature saw as many values
        # (a host number for a GPU fit too: it is bookkeeping, not data)
        if bool(count.max() == count.min()):
            self.n_samples_seen_ = count[0].item() if _on_gpu(count) else count[0]
        else:
            self.n_samples_seen_ = count

    @_sklearn_for_other_namespaces
    def transform(self, X, copy=None):
        copy = copy if copy is not None else self.copy
        X, out = _transform_input(self, X, copy, accept_sparse="csr")
        if _backend.is_sparse(X):
            if self.with_mean:
                raise ValueError("Cannot center sparse matrices: pass `with_mean=False` "
                                 "instead. See docstring for motivation and alternatives.")
            return _scale_sparse_cols(X, copy, None if self.scale_ is None else 1.0 / self.scale_)
        shift = self.mean_.astype(X.dtype) if self.with_mean else 0.0
        scale = 1.0 / self.scale_.astype(X.dtype).astype(np.float64) if self.with_std else 1.0
        offset = 0.0
        if self.with_mean and X.dtype == np.float64 and "_mean_lo" in self.__dict__:
            # (x - mean_) - mean_lo: see _mean_low_part
            offset = -self._mean_low_part() * scale
        return _affine(X, out, shift=shift, scale=scale, offset=offset)

    def _mean_low_part(self):
        """The low part of the mean that a first fit kept (see
        _keep_mean_lo), 0 where mean_ is no longer the value it belongs to
        (set by hand). Centring float64 data on mean_ + low part keeps the
        digits that mean_'s rounding drops: for 1e8 + N(0, 1), half an ulp
        of 1e8 (up to 7e-9) in every output otherwise."""
        kept_mean, mean_lo = self._mean_lo
        if np.shape(self.mean_) != kept_mean.shape:
            return 0.0
        unchanged = self.mean_ == kept_mean
        return mean_lo if unchanged.all() else np.where(unchanged, mean_lo, 0.0)

    @_lazy_for_dask
    @_sklearn_for_other_namespaces
    def inverse_transform(self, X, copy=None):
        check_is_fitted(self)
        copy = copy if copy is not None else self.copy
        X, out = _validated(None, X, reset=False, copy=copy, accept_sparse="csr")
        if _backend.is_sparse(X):
            if self.with_mean:
                raise ValueError("Cannot uncenter sparse matrices: pass `with_mean=False` "
                                 "instead See docstring for motivation and alternatives.")
            return _scale_sparse_cols(X, copy, self.scale_)
        # x * scale + mean as (x - 0) * scale + mean
        scale = self.scale_.astype(X.dtype) if self.with_std else 1.0
        offset = self.mean_.astype(X.dtype) if self.with_mean else 0.0
        return _affine(X, out, scale=scale, offset=offset)


@_dask_ahead_of_set_output
class MinMaxScaler(skp.MinMaxScaler):
    """Transform features by scaling each feature to a given range.

    Drop-in for sklearn.preprocessing.MinMaxScaler (dense input, as
    scikit-learn's) on fastnorm's multithreaded kernels.
    """

    @_fit_context(prefer_skip_nested_validation=True)
    @_sklearn_for_other_namespaces
    def partial_fit(self, X, y=None):
        lo, hi = self.feature_range
        if lo >= hi:
            raise ValueError("Minimum of desired feature range must be smaller than "
                             f"maximum. Got {self.feature_range}.")
        if _backend.is_sparse(X):
            raise TypeError("MinMaxScaler does not support sparse input. "
                            "Consider using MaxAbsScaler instead.")
        first_pass = not hasattr(self, "n_samples_seen_")
        mn, mx, count, n_rows, dtype = _fit_min_max(self, X, first_pass)
        with np.errstate(invalid="ignore"):
            data_min = np.where(count > 0, mn, np.nan).astype(dtype)
            data_max = np.where(count > 0, mx, np.nan).astype(dtype)
        if first_pass:
            self.n_samples_seen_ = n_rows
        else:
            # fmin/fmax: a column all NaN so far (or in this batch) takes the
            # other side's bound, so batches merge to what fit gives (scikit-learn's
            # minimum/maximum would keep NaN for good)
            data_min = np.fmin(self.data_min_, data_min)
            data_max = np.fmax(self.data_max_, data_max)
            self.n_samples_seen_ += n_rows
        data_range = data_max - data_min
        lo, hi = np.dtype(dtype).type(lo), np.dtype(dtype).type(hi)
        self.scale_ = (hi - lo) / _zero_scale_to_one(data_range)
        self.min_ = lo - data_min * self.scale_
        self.data_min_ = data_min
        self.data_max_ = data_max
        self.data_range_ = data_range
        return self

    @_sklearn_for_other_namespaces
    def transform(self, X):
        X, out = _transform_input(self, X, self.copy)
        # (x - data_min) * scale + range_min, not sklearn's x * scale + min_:
        # data_min lands exactly on feature_range[0] whatever the rounding
        # (or fused multiply-add) of the kernel, and far-from-zero data keeps
        # its digits
        scale = self.scale_.astype(X.dtype)
        _affine(X, out, shift=_minmax_shift(self.data_min_.astype(X.dtype), scale), scale=scale,
                offset=self.feature_range[0])
        if self.clip:
            np.clip(out, self.feature_range[0], self.feature_range[1], out=out)
        return out

    @_lazy_for_dask
    @_sklearn_for_other_namespaces
    def inverse_transform(self, X):
        check_is_fitted(self)
        X, out = _validated(None, X, reset=False, copy=self.copy)
        scale = 1.0 / self.scale_.astype(X.dtype).astype(np.float64)
        # the mirror of transform: feature_range[0] maps back to data_min exactly
        return _affine(X, out, shift=self.feature_range[0], scale=scale,
                       offset=self.data_min_.astype(X.dtype))


@_dask_ahead_of_set_output
class MaxAbsScaler(skp.MaxAbsScaler):
    """Scale each feature by its maximum absolute value.

    Drop-in for sklearn.preprocessing.MaxAbsScaler; dense input runs on
    fastnorm's multithreaded kernels.
    """

    @_fit_context(prefer_skip_nested_validation=True)
    @_sklearn_for_other_namespaces
    def partial_fit(self, X, y=None):
        first_pass = not hasattr(self, "n_samples_seen_")
        if _backend.is_sparse(X):
            X = check_sparse(X, self, reset=first_pass, dtype=FLOAT_DTYPES,
                             accept_sparse=("csr", "csc"), ensure_all_finite="allow-nan")
            max_abs = _backend.ops_for(X.data).sparse_col_max_abs(_canonical(X)).astype(X.dtype)
            n_rows = X.shape[0]
        else:
            mn, mx, count, n_rows, dtype = _fit_min_max(self, X, first_pass)
            with np.errstate(invalid="ignore"):
                max_abs = np.where(count > 0, np.maximum(np.abs(mn), np.abs(mx)),
                                   np.nan).astype(dtype)
        if first_pass:
            self.n_samples_seen_ = n_rows
        else:
            max_abs = np.fmax(self.max_abs_, max_abs)  # as MinMaxScaler's merge
            self.n_samples_seen_ += n_rows
        self.max_abs_ = max_abs
        self.scale_ = _zero_scale_to_one(max_abs)
        return self

    @_sklearn_for_other_namespaces
    def transform(self, X):
        X, out = _transform_input(self, X, self.copy, accept_sparse=("csr", "csc"))
        factor = 1.0 / self.scale_.astype(X.dtype).astype(np.float64)
        if _backend.is_sparse(X):
            out = _scale_sparse_cols(X, self.copy, factor)
            if self.clip:
                np.clip(out.data, -1.0, 1.0, out=out.data)
            return out
        _affine(X, out, scale=factor)
        if self.clip:
            np.clip(out, -1.0, 1.0, out=out)
        return out

    @_lazy_for_dask
    @_sklearn_for_other_namespaces
    def inverse_transform(self, X):
        check_is_fitted(self)
        X, out = _validated(None, X, reset=False, copy=self.copy,
                            accept_sparse=("csr", "csc"))
        if _backend.is_sparse(X):
            return _scale_sparse_cols(X, self.copy, self.scale_.astype(X.dtype))
        return _affine(X, out, scale=self.scale_.astype(X.dtype))


@_dask_ahead_of_set_output
class RobustScaler(skp.RobustScaler):
    """Scale features with statistics robust to outliers (median, quantile range).

    Drop-in for sklearn.preprocessing.RobustScaler; dense input runs on
    fastnorm's multithreaded kernels (quantiles by selection, not sorting).
    """

    @_fit_context(prefer_skip_nested_validation=True)
    @_sklearn_for_other_namespaces
    def fit(self, X, y=None):
        if _dask.is_dask_collection(X):
            raise NotImplementedError(
                "RobustScaler needs exact per-feature quantiles, which Dask chunks cannot "
                "merge exactly: fit it on a NumPy array (X.compute(), when it fits in "
                "memory), or scale Dask input with StandardScaler, MinMaxScaler or "
                "MaxAbsScaler. A fitted RobustScaler transforms Dask input lazily.")
        sparse = _backend.is_sparse(X)
        X = _gpu_input(self, X, reset=True, accept_sparse="csc",
                       ensure_all_finite="allow-nan") if _on_gpu(X) else validate_data(
            self, X, dtype=FLOAT_DTYPES, accept_sparse="csc",
            ensure_all_finite="allow-nan" if sparse else False)
        q_min, q_max = self.quantile_range
        if not 0 <= q_min <= q_max <= 100:
            raise ValueError(f"Invalid quantile range: {self.quantile_range}")
        qs = [q_min / 100, 0.5, q_max / 100]
        if sparse:
            if self.with_centering:
                raise ValueError("Cannot center sparse matrices: use `with_centering=False`"
                                 " instead. See docstring for motivation and alternatives.")
            q = _backend.ops_for(X.data).sparse_col_quantiles(_canonical(X), qs)
        else:
            _raise_if_inf(X)
            q = _backend.ops_for(X).quantiles(_for_kernels(X), 0, qs, ignore_nan=True)
        # np.nanmedian keeps X's dtype; np.nanpercentile gives float64
        self.center_ = q[1].astype(X.dtype) if self.with_centering else None
        if self.with_scaling:
            self.scale_ = _zero_scale_to_one(q[2] - q[0])
            if self.unit_variance:
                from scipy.stats import norm
                self.scale_ = self.scale_ / (norm.ppf(q_max / 100.0) - norm.ppf(q_min / 100.0))
        else:
            self.scale_ = None
        return self

    @_sklearn_for_other_namespaces
    def transform(self, X):
        X, out = _transform_input(self, X, self.copy, accept_sparse=("csr", "csc"))
        if _backend.is_sparse(X):  # fit refused centering sparse data
            return _scale_sparse_cols(X, self.copy,
                                      1.0 / self.scale_ if self.with_scaling else None)
        shift = self.center_ if self.with_centering else 0.0
        scale = 1.0 / self.scale_ if self.with_scaling else 1.0
        return _affine(X, out, shift=shift, scale=scale)

    @_lazy_for_dask
    @_sklearn_for_other_namespaces
    def inverse_transform(self, X):
        check_is_fitted(self)
        X, out = _validated(None, X, reset=False, copy=self.copy,
                            accept_sparse=("csr", "csc"))
        if _backend.is_sparse(X):
            return _scale_sparse_cols(X, self.copy, self.scale_ if self.with_scaling else None)
        scale = self.scale_ if self.with_scaling else 1.0
        offset = self.center_ if self.with_centering else 0.0
        return _affine(X, out, scale=scale, offset=offset)


@_dask_ahead_of_set_output
class Normalizer(skp.Normalizer):
    """Normalize samples individually to unit norm.

    Drop-in for sklearn.preprocessing.Normalizer; dense input runs on
    fastnorm's fused one-sweep row kernel.
    """

    @_sklearn_for_other_namespaces
    def fit(self, X, y=None):
        if _dask.is_dask_collection(X):  # stateless: only the feature bookkeeping
            X, columns = _dask.as_dask_array(X)
            _dask.check_features(self, X, columns, reset=True)
            return self
        if _on_gpu(X):
            _gpu_input(self, X, reset=True, accept_sparse="csr")
            return self
        return super().fit(X, y)

    @_sklearn_for_other_namespaces
    def transform(self, X, copy=None):
        copy = copy if copy is not None else self.copy
        if _backend.is_sparse(X):
            X = check_sparse(X, self, accept_sparse="csr", reset=False, dtype=FLOAT_DTYPES,
                             copy=copy, force_writeable=True)
            X = _canonical(X)
            _backend.ops_for(X.data).sparse_normalize_rows(X, self.norm, X.data)
            return X
        if _skips_validation(self, X):
            return normalize.unchecked(X, self.norm, axis=1, copy=copy, return_norm=False,
                                       out=None)
        X_checked = _gpu_input(self, X, reset=False) if _on_gpu(X) else validate_data(
            self, X, reset=False, ensure_all_finite=False)
        shares = X_checked is X or (isinstance(X, np.ndarray)
                                    and np.may_share_memory(X_checked, X))
        return normalize(X_checked, norm=self.norm, axis=1, copy=copy or not shares)



# help() and the documentation: scikit-learn's docstrings, fastnorm's notes
# (fastnorm._docs carries the text over; only the differences are said here)
_COMMON_NOTES = """\
- float16 input stays float16, as in scikit-learn (computed in float32);
- with scikit-learn's ``array_api_dispatch`` on, arrays of another
  array-API namespace (torch, array-api-strict, ...; CuPy arrays are
  fastnorm's own) go to scikit-learn's own implementation, and so does
  every later call of a transformer fitted that way.
"""
_DASK_NOTES = """\
- Dask arrays and DataFrames are fitted chunk by chunk where they live and
  transformed lazily, chunk by chunk (the result is a Dask collection: a
  Dask DataFrame for a Dask DataFrame, or for a Dask array under the
  "pandas" output config; the "polars" config is a ValueError, as it would
  gather the data);
"""


def _transform_note(formula, more=""):
    return paragraph(
        f"fastnorm: one fused pass {formula} over X, written straight into the "
        "output (into X itself when copying is off and X is a writeable float "
        f"array); an infinity in X is a ValueError, as in scikit-learn.{more} "
        "Dask input is transformed lazily, chunk by chunk.")


def _intro(name, threaded=True):
    return f"""\
**fastnorm notes.** This is ``fastnorm.preprocessing.{name}``, a
subclass of scikit-learn's with the same parameters, attributes, results,
errors, ``set_output`` and feature names; the passes over the data run on
fastnorm's {"multithreaded " if threaded else ""}kernels:

"""


_DOCS = {
    StandardScaler: (_intro("StandardScaler") + """\
- dense NumPy input and sparse CSR/CSC matrices (``with_mean=False``) are
  fitted in one pass (float64 accumulation, exact Chan merging across
  ``partial_fit`` calls, no float64 copy of X) and transformed in one fused
  pass ``(x - mean_) / scale_``; duplicate sparse entries are summed first,
  as scipy reads them;
""" + _DASK_NOTES + """\
  ``sample_weight`` is not supported with Dask input;
- negative sample weights are refused with a ValueError (scikit-learn
  accepts them);
""" + _COMMON_NOTES, {
        "partial_fit": """\
fastnorm: one multithreaded pass over X (float64 accumulation), merged
exactly into the statistics of the earlier calls; dense NumPy, sparse
CSR/CSC (``with_mean=False``) and Dask input (chunk by chunk, without
``sample_weight``). Negative sample weights are refused with a
ValueError.""",
        "transform": _transform_note("``(x - mean_) / scale_``",
                                     " Sparse input is scaled as CSR."),
        "inverse_transform": _transform_note("``x * scale_ + mean_``",
                                             " Sparse input is scaled as CSR."),
    }),
    MinMaxScaler: (_intro("MinMaxScaler") + """\
- dense NumPy input is fitted with one threaded min/max pass (sparse input
  is refused with a TypeError, as in scikit-learn);
""" + _DASK_NOTES + """\
- transform computes ``(x - data_min_) * scale_ + feature_range[0]`` rather
  than scikit-learn's ``x * scale_ + min_`` (``min_`` is still set as
  scikit-learn sets it): ``data_min_`` maps exactly to ``feature_range[0]``
  and data far from zero keeps its digits, so results can differ from
  scikit-learn's in the last bits; inverse_transform is its mirror,
  ``(x - feature_range[0]) / scale_ + data_min_``;
""" + _COMMON_NOTES, {
        "partial_fit": """\
fastnorm: one multithreaded NaN-ignoring min/max pass over X, folded into
the minima and maxima of the earlier calls; dense NumPy and Dask input
(chunk by chunk).""",
        "transform": _transform_note(
            "``(x - data_min_) * scale_ + feature_range[0]``",
            " ``data_min_`` maps exactly to ``feature_range[0]``."),
        "inverse_transform": _transform_note(
            "``(x - feature_range[0]) / scale_ + data_min_``",
            " ``feature_range[0]`` maps back to ``data_min_`` exactly."),
    }),
    MaxAbsScaler: (_intro("MaxAbsScaler") + """\
- dense NumPy input and sparse CSR/CSC matrices are fitted with one
  threaded pass and scaled in one pass (the sparsity structure is kept;
  duplicate sparse entries are summed first, as scipy reads them);
""" + _DASK_NOTES + _COMMON_NOTES, {
        "partial_fit": """\
fastnorm: one multithreaded NaN-ignoring pass over X, folded into the
maxima of the earlier calls; dense NumPy, sparse CSR/CSC and Dask input
(chunk by chunk).""",
        "transform": _transform_note("``x / scale_``",
                                     " Sparse CSR/CSC input keeps its format."),
        "inverse_transform": _transform_note("``x * scale_``",
                                             " Sparse CSR/CSC input keeps its format."),
    }),
    RobustScaler: (_intro("RobustScaler") + """\
- dense NumPy input is fitted with per-feature quantiles found by selection,
  not sorting (NaN-ignoring, interpolated linearly as ``np.nanpercentile``);
  sparse CSR/CSC matrices (``with_centering=False``) sort the explicit
  values of each column and count its zeros in;
- transform and inverse_transform are one fused pass over dense X, or over
  the stored values of sparse CSR/CSC X;
- RobustScaler cannot fit Dask input (exact quantiles do not merge across
  chunks: fit raises NotImplementedError); fitted on NumPy data, it
  transforms Dask arrays and DataFrames lazily, chunk by chunk;
""" + _COMMON_NOTES, {
        "fit": """\
fastnorm: per-feature quantiles by selection on fastnorm's multithreaded
kernels (dense), or from the sorted explicit values of each sparse column
with its zeros counted in. Dask input cannot be fitted (NotImplementedError:
fit on a NumPy array, or use StandardScaler, MinMaxScaler or MaxAbsScaler).""",
        "transform": _transform_note("``(x - center_) / scale_``",
                                     " Sparse CSR/CSC input keeps its format."),
        "inverse_transform": _transform_note("``x * scale_ + center_``",
                                             " Sparse CSR/CSC input keeps its format."),
    }),
    Normalizer: (_intro("Normalizer", threaded=False) + """\
- dense rows are normalized by a fused one-sweep row kernel (each row's
  norm, then the division while the row is in cache), multithreaded over
  rows; sparse CSR matrices (CSC is converted, as in scikit-learn) are
  normalized over their stored values;
- Dask arrays and DataFrames: fit only records the features (Normalizer is
  stateless) and transform is lazy, chunk by chunk;
""" + _COMMON_NOTES, {
        "fit": """\
fastnorm: as in scikit-learn, fit only validates X and records the
number (and names) of the features; Dask input is not computed.""",
        "transform": """\
fastnorm: dense rows in one fused sweep each (norm, then division while
the row is in cache), sparse CSR over its stored values; Dask input is
transformed lazily, chunk by chunk.""",
    }),
}
for _cls, (_notes, _method_notes) in _DOCS.items():
    document_class(_cls, _notes, _method_notes, module="fastnorm.preprocessing")
del _cls, _notes, _method_notes
