"""smrt: repair class imbalance with variational auto-encoders (SMRT), SMOTE and random samplers.

The samplers follow imbalanced-learn's conventions, so one replaces another in a line::

    from smrt import SMRT
    X_res, y_res = SMRT(random_state=0).fit_resample(X, y)

``fit_resample`` takes NumPy arrays (float32 or float64, C or Fortran order), pandas DataFrames
(text, ``category`` and ``bool`` columns are categorical) and lists; ``y`` of ints, strings or a
pandas Series. It returns the kinds it got: an array of the input's float dtype, or a DataFrame
with the same columns and dtypes; ``y`` as an array of the input's labels, or a Series. After a
call, ``sample_indices_`` holds for each output row the input row it is or was drawn from (-1
where there is none) and ``synthetic_`` whether it is synthetic.

``sampling_strategy`` takes imbalanced-learn's forms: ``'auto'`` (over-samplers: every class but
the majority up to its count; the under-sampler: every class down to the minority's),
``'minority'``, ``'majority'`` (under-sampling), ``'not minority'``, ``'not majority'``,
``'all'``, a float (the ratio to the majority, or of the minority for the under-sampler), a dict
``{label: final count}``, or a function of ``y`` returning such a dict.

The computation runs in Rust (``smrt._smrt``) with the GIL released, on the CPU engine or a GPU
(``backend='gpu'``); ``smrt.info()`` lists the GPU adapters found.
"""

import contextlib
import inspect
import re

import numpy as np

from . import _smrt

__all__ = [
    "SMRT",
    "SMOTE",
    "SMOTENC",
    "SMOTEN",
    "RandomOverSampler",
    "RandomUnderSampler",
    "generate",
    "info",
    "__version__",
]

__version__ = _smrt.version()

try:  # scikit-learn's base class gives clone(), repr and tags; the samplers work without it.
    from sklearn.base import BaseEstimator as _Base
except ImportError:  # pragma: no cover
    _Base = object


def info():
    """The GPU adapters found (one line each) and the engine ``backend='auto'`` picks."""
    return _smrt.info()


def generate(models, label, n, random_state=0, shard=None, X=None, y=None, generation=None,
             temperature=None, backend="auto"):
    """Draws ``n`` synthetic rows of class ``label`` from the models saved in directory
    ``models`` (by ``SMRT.save_models``, ``smrt fit`` or ``smrt balance --save-models``): the
    rows ``smrt generate`` writes for the same seed.

    ``shard=(k, s)`` returns only the k-th (from 1) of s contiguous slices of the ``n`` rows;
    the s slices concatenated in order are the ``n`` rows, so separate jobs (Spark tasks, say)
    can each make one. Every mode but ``'prior'`` starts from real rows of the class: pass the
    data the models were fitted on as ``X`` and ``y``. ``generation`` and ``temperature``
    override the saved settings. Returns a float64 array of the features, or a pandas DataFrame
    (categorical columns as their text) where the models have categorical columns or ``X`` is
    a DataFrame."""
    label_name, features, categories, classes = _smrt.read_model_index(str(models))
    key = str(label)
    if key not in classes:
        raise ValueError(f"no model for class {key!r} in {models} (there are models for {classes})")
    k, s = (1, 1) if shard is None else shard
    numeric = [f for f in features if f not in categories]
    categorical = [f for f in features if f in categories]
    x = np.zeros((0, len(numeric)), np.float32)
    codes = np.zeros((0, len(categorical)), np.uint32)
    frame = hasattr(X, "columns") and hasattr(X, "iloc")
    _refuse_sparse(X)
    if X is not None:
        if y is None:
            raise ValueError("X needs its labels y")
        mine = np.asarray([str(v) for v in np.asarray(y)]) == key
        if frame:
            _unique_columns(X)
            missing = [f for f in features if f not in [str(c) for c in X.columns]]
            if missing:
                raise ValueError(f"X lacks the models' columns {missing}")
            X_class = X.loc[mine, [c for c in X.columns if str(c) in features]]
            x = X_class[[c for c in X_class.columns if str(c) in numeric]].to_numpy(np.float32)
            codes = np.zeros((len(X_class), len(categorical)), np.uint32)
            for j, name in enumerate(categorical):
                index = {t: i for i, t in enumerate(categories[name])}
                column = [c for c in X_class.columns if str(c) == name][0]
                try:
                    codes[:, j] = [index[str(v)] for v in X_class[column]]
                except KeyError as e:
                    raise ValueError(f"category {e.args[0]!r} of column {name!r} was not in the data the models were fitted on") from None
        else:
            x = np.asarray(X, dtype=np.float32)[mine]
            if categorical:
                raise ValueError("the models have categorical columns: pass X as a DataFrame")
            codes = np.zeros((len(x), 0), np.uint32)
    options = {"generation": generation, "temperature": temperature, "backend": backend}
    values, made_codes, _ = _smrt.generate(
        str(models), key, int(n), int(random_state), (int(k), int(s)),
        np.ascontiguousarray(x, dtype=np.float32), np.ascontiguousarray(codes, dtype=np.uint32), options,
    )
    if not categorical and not frame:
        return values.astype(np.float64)
    import pandas as pd

    out = {}
    num, cat = iter(values.T), iter(made_codes.T)
    for name in features:
        if name in categories:
            out[name] = np.asarray(categories[name], dtype=object)[next(cat)]
        else:
            out[name] = next(num).astype(np.float64)
    return pd.DataFrame(out, columns=features)


def _refuse_sparse(X):
    """A SciPy sparse matrix (or array) would turn into a 0-D object array: says so instead."""
    if hasattr(X, "tocsr") and hasattr(X, "nnz"):
        raise ValueError("sparse X is not supported: pass a dense array (X.toarray())")


def _unique_columns(X):
    """Refuses a DataFrame whose column names repeat: its columns are found by name."""
    import collections

    repeated = {c: n for c, n in collections.Counter(X.columns).items() if n > 1}
    if repeated:
        names = ", ".join(f"{c!r} ({n} columns)" for c, n in repeated.items())
        raise ValueError(f"X's column names must be unique; repeated: {names}")


def _frame_parts(X):
    """Numeric block (float32), categorical codes (uint32), category values per categorical
    column, and how to rebuild the input's kind."""
    import pandas as pd

    _unique_columns(X)
    numeric_cols, categorical_cols, values, codes = [], [], [], []
    for name in X.columns:
        col = X[name]
        if (
            pd.api.types.is_bool_dtype(col)
            or isinstance(col.dtype, pd.CategoricalDtype)
            or not pd.api.types.is_numeric_dtype(col)
        ):
            c, uniques = pd.factorize(col, use_na_sentinel=False)
            categorical_cols.append(name)
            codes.append(c.astype(np.uint32))
            values.append(uniques)
        else:
            numeric_cols.append(name)
    x = np.ascontiguousarray(X[numeric_cols].to_numpy(dtype=np.float32)) if numeric_cols else np.zeros((len(X), 0), np.float32)
    c = np.column_stack(codes).astype(np.uint32) if codes else np.zeros((len(X), 0), np.uint32)
    return x, c, values, (numeric_cols, categorical_cols)


def _rebuild_frame(X, x, codes, values, cols):
    import pandas as pd

    numeric_cols, categorical_cols = cols
    data = {}
    for j, name in enumerate(numeric_cols):
        dtype = X[name].dtype
        column = x[:, j]
        if pd.api.types.is_integer_dtype(dtype):
            column = np.rint(column)
        data[name] = pd.Series(column, name=name).astype(dtype)
    for j, name in enumerate(categorical_cols):
        taken = pd.Index(values[j]).take(codes[:, j])
        data[name] = pd.Series(taken, name=name).astype(X[name].dtype)
    return pd.DataFrame({name: data[name] for name in X.columns})


def _target(y):
    """``y`` as a 1-D array of labels, and the classes when it came one-hot encoded (one column
    per class, as ``label_binarize`` writes it). Continuous and multilabel targets are refused."""
    y_arr = np.asarray(y)
    if y_arr.ndim == 2 and y_arr.shape[1] == 1:
        y_arr = y_arr[:, 0]
    if y_arr.ndim == 2:
        if np.isin(y_arr, (0, 1)).all() and (y_arr.sum(axis=1) == 1).all():
            columns = np.arange(y_arr.shape[1])
            return columns[np.argmax(y_arr, axis=1)], columns
        raise ValueError("Multilabel and multioutput targets are not supported.")
    if y_arr.ndim != 1:
        raise ValueError(f"y must be 1-D, got {y_arr.ndim} dimension(s)")
    if y_arr.dtype.kind == "f" and not np.isfinite(y_arr).all():
        row = int(np.flatnonzero(~np.isfinite(y_arr))[0])
        raise ValueError(f"y holds {y_arr[row]} at row {row}: every row needs a class label")
    if y_arr.dtype.kind == "O":
        for row, v in enumerate(y_arr):
            if v is None or type(v).__name__ == "NAType" or (isinstance(v, float) and v != v):
                raise ValueError(f"y holds {v} at row {row}: every row needs a class label")
    if y_arr.dtype.kind == "f" and len(y_arr) and not np.all(np.mod(y_arr, 1) == 0):
        raise ValueError("Unknown label type: continuous. y holds class labels, not values to regress.")
    return y_arr, None


_CLASS_CODE = re.compile(r"\b(class )(\d+)(?= has |: )")


@contextlib.contextmanager
def _labels_in_errors(classes):
    """Errors from the extension name a class by its code (its index in ``classes``): shows the
    label instead."""
    try:
        yield
    except ValueError as e:
        message = _CLASS_CODE.sub(lambda m: m[1] + repr(classes[int(m[2])]), str(e))
        raise ValueError(message) from None


def _encode(y_arr):
    """The classes of ``y_arr``, sorted, and each label's index among them (``np.unique`` with
    ``return_inverse``; small non-negative integers take a counting path that needs no sort)."""
    if y_arr.dtype.kind in "iu" and len(y_arr):
        low, high = int(y_arr.min()), int(y_arr.max())
        if low >= 0 and high < 2 * len(y_arr) + 1024:
            present = np.flatnonzero(np.bincount(y_arr))
            if low == 0 and len(present) == high + 1:
                return present.astype(y_arr.dtype), np.ascontiguousarray(y_arr)  # labels = codes
            index = np.zeros(high + 1, dtype=np.int64)
            index[present] = np.arange(len(present))
            return present.astype(y_arr.dtype), index[y_arr]
    return np.unique(y_arr, return_inverse=True)


def _labels_like(y, labels, one_hot):
    """Output labels (an array of ``y``'s classes) in the form ``y`` came in: one-hot rows,
    a pandas Series or DataFrame of the same name and dtype, or an array."""
    if one_hot is not None:
        labels = (labels[:, None] == one_hot).astype(np.asarray(y).dtype)
    y_frame = hasattr(y, "columns") and hasattr(y, "iloc")
    if hasattr(y, "iloc") and hasattr(y, "name") and not y_frame:
        import pandas as pd

        return pd.Series(labels, name=y.name).astype(y.dtype)
    if y_frame:
        import pandas as pd

        return pd.DataFrame(np.asarray(labels).reshape(len(labels), -1), columns=y.columns).astype(y.dtypes.to_dict())
    return labels


def _progress(classes):
    """A report of ``(class code, epoch, loss)``: a tqdm bar per class where tqdm is installed,
    else a line on stderr every 100 epochs."""
    import sys

    try:
        from tqdm.auto import tqdm
    except ImportError:
        tqdm = None
    bars = {}

    def report(code, epoch, loss):
        label = classes[code]
        if tqdm is not None:
            bar = bars.get(code)
            if bar is None:
                bar = bars[code] = tqdm(desc=f"class {label}", unit="epoch", leave=False)
            bar.update(1)
            bar.set_postfix(loss=f"{loss:.4f}", refresh=False)
        elif epoch % 100 == 0:
            print(f"smrt: class {label}: epoch {epoch}, loss {loss:.4f}", file=sys.stderr)

    return report


def _recode(directory, names, codes, values):
    """Codes of the categorical columns re-expressed in the dictionaries of saved models (by each
    category's text); a category the models never saw is a ValueError naming it."""
    _, _, saved, _ = _smrt.read_model_index(str(directory))
    codes = codes.copy()
    out_values = []
    for j, name in enumerate(names):
        dictionary = saved.get(str(name))
        if dictionary is None:
            raise ValueError(f"column {name!r} is categorical here but was numeric when the models were fitted")
        index = {text: k for k, text in enumerate(dictionary)}
        mapping = []
        for v in values[j]:
            if str(v) not in index:
                raise ValueError(f"category {str(v)!r} of column {name!r} was not in the data the models were fitted on")
            mapping.append(index[str(v)])
        codes[:, j] = np.asarray(mapping, dtype=np.uint32)[codes[:, j]]
        by_text = {str(v): v for v in values[j]}
        out_values.append(np.asarray([by_text.get(t, t) for t in dictionary], dtype=object))
    return codes, out_values


def _saved(models, X, y, cols, values, classes, width):
    """What ``save_models`` writes: the models, the label's name, the column names (a
    DataFrame's, where ``cols`` holds its numeric and categorical names; ``x0``, ``x1``, ...
    for ``width`` array columns), each categorical column's categories as text, the classes as
    text."""
    names = [str(n) for n in X.columns] if cols is not None else [f"x{i}" for i in range(width)]
    categorical = [str(n) for n in cols[1]] if cols is not None else []
    return (
        models,
        str(getattr(y, "name", None) or "label"),
        names,
        {c: [str(v) for v in vals] for c, vals in zip(categorical, values)},
        [str(c) for c in classes.tolist()],
    )


def _sampling_strategy_(method, classes, y_in, y_out):
    """imbalanced-learn's fitted ``sampling_strategy_``: rows added to each class that grew, or
    rows kept of each class that shrank."""
    before = np.bincount(y_in, minlength=len(classes))
    after = np.bincount(y_out, minlength=len(classes))
    label = lambda c: classes[c].item() if hasattr(classes[c], "item") else classes[c]
    if method == "random-under":
        return {label(c): int(after[c]) for c in range(len(classes)) if after[c] < before[c]}
    return {label(c): int(after[c] - before[c]) for c in range(len(classes)) if after[c] > before[c]}


def _named_targets(strategy, over, labels, counts):
    """imbalanced-learn's named selections that smrt's core does not take (``'all'``,
    ``'not minority'``, ``'majority'``; ``'not majority'`` when under-sampling, where it leaves the
    majority alone) as final counts by label: the chosen classes go up to the largest count, or
    down to the smallest. Any other strategy comes back as it is. Ties pick the first class in
    ``labels`` order, as imbalanced-learn does."""
    if not isinstance(strategy, str):
        return strategy
    smallest = min(range(len(labels)), key=lambda i: counts[i])
    largest = max(range(len(labels)), key=lambda i: counts[i])
    everyone = range(len(labels))
    if over:
        if strategy in ("majority",):
            raise ValueError("sampling_strategy 'majority' cannot be used with an over-sampler: the majority already has the most rows")
        chosen = {"all": everyone, "not minority": [i for i in everyone if i != smallest]}.get(strategy)
        target = counts[largest]
    else:
        if strategy == "minority":
            raise ValueError("sampling_strategy 'minority' cannot be used with an under-sampler: the minority already has the fewest rows")
        chosen = {
            "all": everyone,
            "majority": [largest],
            "not minority": [i for i in everyone if i != smallest],
            "not majority": [i for i in everyone if i != largest],
        }.get(strategy)
        target = counts[smallest]
    if chosen is None:
        return strategy
    return {labels[i]: int(target) for i in chosen}


class _Sampler(_Base):
    """What every sampler shares: parameters, conversion in and out, provenance."""

    _method = None

    def __init__(self, sampling_strategy="auto", random_state=None):
        self.sampling_strategy = sampling_strategy
        self.random_state = random_state

    @classmethod
    def _get_param_names(cls):
        sig = inspect.signature(cls.__init__)
        return sorted(p for p in sig.parameters if p != "self")

    def get_params(self, deep=True):
        """The constructor's keywords and their values."""
        return {name: getattr(self, name) for name in self._get_param_names()}

    def set_params(self, **params):
        """Sets constructor keywords; an unknown one is a ``ValueError``."""
        valid = self._get_param_names()
        for key, value in params.items():
            if key not in valid:
                raise ValueError(f"invalid parameter {key!r} for {type(self).__name__}; valid: {valid}")
            setattr(self, key, value)
        return self

    def _options(self, classes):
        return {}

    def __sklearn_tags__(self):
        """imbalanced-learn's sampler tags where it is installed (its estimator checks read
        them): dense arrays, DataFrames, text columns, and ``sample_indices_``."""
        tags = super().__sklearn_tags__()
        try:
            from imblearn.utils._tags import InputTags, SamplerTags, Tags
        except ImportError:  # pragma: no cover
            return tags
        ours = Tags(
            estimator_type="sampler",
            target_tags=tags.target_tags,
            transformer_tags=None,
            regressor_tags=None,
            classifier_tags=None,
            sampler_tags=SamplerTags(sample_indices=True),
        )
        ours.target_tags.required = True
        ours.input_tags = InputTags(two_d_array=True, dataframe=True, string=True, categorical=True)
        return ours

    def _seed(self):
        rs = self.random_state
        if rs is None:
            return 0
        if isinstance(rs, (int, np.integer)):
            if rs < 0:
                raise ValueError(f"random_state must be >= 0, got {rs}")
            return int(rs)
        raise TypeError("random_state must be None or an int")

    def get_feature_names_out(self, input_features=None):
        """The output's column names: a sampler keeps its input's columns."""
        try:  # scikit-learn's own checks and messages, where it is installed
            from sklearn.utils.validation import _check_feature_names_in
        except ImportError:  # pragma: no cover
            _check_feature_names_in = None
        if _check_feature_names_in is not None:
            return _check_feature_names_in(self, input_features)
        if input_features is not None:
            names = np.asarray(input_features, dtype=object)
            if len(names) != self.n_features_in_:
                raise ValueError(f"input_features has {len(names)} names; X has {self.n_features_in_} columns")
            return names
        if hasattr(self, "feature_names_in_"):
            return self.feature_names_in_.copy()
        return np.asarray([f"x{i}" for i in range(self.n_features_in_)], dtype=object)

    def _fitted_provenance(self, name):
        """``(n, sources, synthetic)`` of the last ``fit_resample``: its first ``n`` output rows
        are the input rows in order, then rows from ``sources`` (synthetic where ``synthetic`` says;
        ``None``: all synthetic)."""
        provenance = self.__dict__.get("_provenance")
        if provenance is None:
            raise AttributeError(f"{name} exists after fit_resample")
        return provenance

    @property
    def sample_indices_(self):
        """For each row of the last ``fit_resample``'s output, the input row it is or was drawn
        from (-1 where there is none)."""
        n, sources, _ = self._fitted_provenance("sample_indices_")
        return np.concatenate([np.arange(n), sources])

    @property
    def synthetic_(self):
        """For each row of the last ``fit_resample``'s output, whether it is synthetic."""
        n, sources, synthetic = self._fitted_provenance("synthetic_")
        if synthetic is None:
            synthetic = np.ones(len(sources), dtype=bool)
        return np.concatenate([np.zeros(n, dtype=bool), synthetic])

    def _over_labels(self, y, y_arr, one_hot, classes, y_out):
        """The output labels of an over-sampler, given the synthetic rows' label codes ``y_out``
        (and ``sampling_strategy_`` from them)."""
        added = np.bincount(y_out, minlength=len(classes))
        label = lambda c: classes[c].item() if hasattr(classes[c], "item") else classes[c]
        self.sampling_strategy_ = {label(c): int(added[c]) for c in range(len(classes)) if added[c] > 0}
        # The input's labels as they are, then the synthetic rows' (the same values and dtype
        # as `classes[codes]`, without indexing every input row again).
        return _labels_like(y, np.concatenate([np.asarray(y_arr, dtype=classes.dtype), classes[y_out]]), one_hot)

    def fit(self, X, y):
        """Resamples once; the result is discarded (``fit_resample`` returns it)."""
        self.fit_resample(X, y)
        return self

    def fit_resample(self, X, y):
        """Resamples ``X`` (rows) with labels ``y``; returns ``(X_resampled, y_resampled)``."""
        _refuse_sparse(X)
        frame = hasattr(X, "columns") and hasattr(X, "iloc")
        if frame:
            x, codes, values, cols = _frame_parts(X)
            out_dtype, direct = None, False
        else:
            arr = np.asarray(X)
            if arr.ndim != 2:
                raise ValueError(f"X must be 2-D (rows x features), got {arr.ndim} dimension(s)")
            if not np.issubdtype(arr.dtype, np.number):
                # Text (or objects): every column categorical, as a DataFrame of them would be.
                import pandas as pd

                frame_out, labels = self.fit_resample(pd.DataFrame(arr, dtype=object), y)
                return frame_out.to_numpy(dtype=object), labels
            out_dtype = arr.dtype if np.issubdtype(arr.dtype, np.floating) else np.float64
            # Plain float rows over-sampled by SMOTE or copies take one call that converts only
            # the rows it searches and writes the output itself (`_smrt.oversample`).
            direct = (
                self._method in ("smote", "random-over")
                and arr.dtype in (np.float32, np.float64)
                and arr.flags.c_contiguous
                and arr.shape[0] > 0
                and arr.shape[1] > 0
                and not isinstance(X, list)
            )
            if direct:
                x = arr
            elif arr.dtype == np.float64 and arr.flags.c_contiguous:
                x = _smrt.as_f32(arr)  # on every core
            else:
                x = arr.astype(np.float32, copy=False)
            codes = np.zeros((x.shape[0], 0), np.uint32)
            values = []
        self.n_features_in_ = x.shape[1] + codes.shape[1]
        if frame:
            self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        elif hasattr(self, "feature_names_in_"):
            del self.feature_names_in_
        y_frame = hasattr(y, "columns") and hasattr(y, "iloc")
        y_arr, one_hot = _target(y.iloc[:, 0] if y_frame and y.shape[1] == 1 else y)
        if len(y_arr) != x.shape[0]:
            raise ValueError(f"X has {x.shape[0]} rows and y has {len(y_arr)} labels")
        classes, y_codes = _encode(y_arr)
        if len(classes) < 2:
            raise ValueError(f"y needs at least 2 classes to balance; it has {len(classes)}: {classes.tolist()}")
        strategy = self.sampling_strategy
        over = self._method != "random-under"
        if callable(strategy):
            # imbalanced-learn's form: a function of y giving {label: count}.
            strategy = strategy(y)
            if not isinstance(strategy, dict):
                raise ValueError(f"a callable sampling_strategy must return a dict of {{label: count}}, not {type(strategy).__name__}")
        if isinstance(strategy, str):
            counts = np.bincount(y_codes, minlength=len(classes)).tolist()
            strategy = _named_targets(strategy, over, classes.tolist(), counts)
        if isinstance(strategy, dict):
            index = {c: i for i, c in enumerate(classes.tolist())}
            unknown = [k for k in strategy if k not in index]
            if unknown:
                raise ValueError(f"sampling_strategy names classes {unknown} that are not in y (classes: {classes.tolist()})")
            strategy = {index[k]: int(v) for k, v in strategy.items()}
        elif isinstance(strategy, (int, np.integer)) and not isinstance(strategy, bool):
            strategy = float(strategy)
        if frame and getattr(self, "models", None) and codes.shape[1]:
            codes, values = _recode(self.models, cols[1], codes, values)
        levels = [len(v) for v in values]
        y_codes = np.asarray(y_codes, dtype=np.int64)
        if direct:
            with _labels_in_errors(classes.tolist()):
                out, y_out, rows = _smrt.oversample(self._method, arr, y_codes, strategy, self._seed(), self._options(classes))
            self._provenance = (x.shape[0], rows, None)
            return out, self._over_labels(y, y_arr, one_hot, classes, y_out)
        # Over-samplers return every input row, in order, then the synthetic rows: only those
        # come back from smrt, and the input rows are copied once, from X as it came.
        with _labels_in_errors(classes.tolist()):
            made, made_codes, y_out, rows, synthetic, models = _smrt.fit_resample(
                self._method,
                x,
                np.ascontiguousarray(codes, dtype=np.uint32),
                levels,
                y_codes,
                strategy,
                self._seed(),
                self._options(classes),
                over,
            )
        if over:
            # The input rows, then the synthetic ones: provenance arrays are built when read.
            self._provenance = (x.shape[0], rows, None)
        else:
            self._provenance = (0, rows, synthetic)
            made, made_codes = made[synthetic], made_codes[synthetic]
        if models is not None:
            self._saved = _saved(models, X, y, cols if frame else None, values, classes, x.shape[1])
        if over:
            labels = self._over_labels(y, y_arr, one_hot, classes, y_out)
        else:
            self.sampling_strategy_ = _sampling_strategy_(self._method, classes, y_codes, y_out)
            labels = _labels_like(y, classes[y_out], one_hot)
        # Input rows come back as they went in (not through float32); synthetic rows from smrt.
        if frame:
            import pandas as pd

            n_out = len(labels)
            if over:
                parts = [X.set_axis(np.arange(x.shape[0]))]
                if len(made):
                    made_frame = _rebuild_frame(X, made, made_codes, values, cols)
                    parts.append(made_frame.set_axis(np.arange(x.shape[0], n_out)))
                return pd.concat(parts).reset_index(drop=True), labels
            return X.iloc[rows].reset_index(drop=True), labels
        if over and arr.dtype in (np.float32, np.float64) and arr.flags.c_contiguous:
            out = _smrt.stack(arr, made)  # on every core
        elif over:
            out = np.empty((len(labels), x.shape[1]), dtype=np.float64 if isinstance(X, list) else out_dtype)
            out[: x.shape[0]] = arr
            out[x.shape[0] :] = made
        else:
            out = arr[rows].astype(np.float64 if isinstance(X, list) else out_dtype, copy=False)
        if isinstance(X, list):
            return out.tolist(), (labels.tolist() if isinstance(y, list) else labels)
        return out, labels


class SMRT(_Sampler):
    """SMRT: one variational auto-encoder per class that needs rows, synthetic rows drawn from it.

    Every keyword is a setting of ``smrt balance`` (``None`` keeps smrt's default): ``hidden``
    (layer widths), ``latent`` (an int, or a float: a fraction of the features), ``epochs``,
    ``min_steps``, ``max_steps``, ``batch_size``, ``learning_rate``, ``beta``, ``likelihood``
    (``'gaussian'``, ``'gaussian-learned'``, ``'bernoulli'``), ``generation`` (``'auto'``, the
    default: prior or prior-residual chosen per class; ``'prior'``, ``'posterior'``,
    ``'residual'``, ``'prior-residual'``, ``'interpolate'``), ``temperature``,
    ``clip``, ``category`` (``'argmax'`` or ``'sample'``), ``fit_rows`` (fit each class from at
    most this many of its rows, a seeded uniform sample; the CLI's ``--sample``; default: every
    row), the network and its training: ``activation`` (``'relu'``, ``'elu'``, ``'tanh'``,
    ``'sigmoid'``, ``'identity'``), ``init`` (``'xavier-uniform'``, ``'he-normal'``),
    ``bias_init`` (``'zeros'``, ``'ones'``), ``optimizer`` (``'adam'``, ``'rms-prop'``,
    ``'sgd'``, ``'momentum'``, ``'adagrad'``), ``l2``, ``clip_norm`` (0 turns clipping off),
    ``dropout``, ``patience`` and ``min_delta`` (early stopping on the epoch loss; ``min_delta``
    only with ``patience``), ``scaling`` (``'standard'``, ``'min-max'``, ``'none'``),
    ``neighbors`` (latent neighbours of ``'interpolate'`` generation), ``backend`` (``'auto'``, ``'gpu'``,
    ``'cpu'``), ``models`` (a directory of saved models to reuse: written by :meth:`save_models`,
    ``smrt fit`` or ``smrt balance --save-models``; classes without a model are trained, and the
    models draw with their saved settings unless keywords say otherwise), ``verbose`` (a progress
    bar per class while it trains: tqdm's where tqdm is installed, else a line on stderr every
    100 epochs).

    A numeric column with exactly two values in ``X`` (a 0/1 flag, or any pair) is a yes/no
    variable: each class's network models it with a two-way head, and synthetic rows take one of
    its two values at the class's rate. Text, boolean and categorical columns are categorical.

    Ctrl-C stops a fit between epochs and raises ``KeyboardInterrupt``.
    """

    _method = "smrt"

    def __init__(
        self,
        sampling_strategy="auto",
        random_state=None,
        hidden=None,
        latent=None,
        epochs=None,
        min_steps=None,
        max_steps=None,
        batch_size=None,
        learning_rate=None,
        beta=None,
        likelihood=None,
        generation=None,
        temperature=None,
        clip=None,
        category=None,
        fit_rows=None,
        activation=None,
        init=None,
        bias_init=None,
        optimizer=None,
        l2=None,
        clip_norm=None,
        dropout=None,
        patience=None,
        min_delta=None,
        scaling=None,
        neighbors=None,
        backend="auto",
        models=None,
        verbose=False,
    ):
        self.sampling_strategy = sampling_strategy
        self.random_state = random_state
        self.hidden = hidden
        self.latent = latent
        self.epochs = epochs
        self.min_steps = min_steps
        self.max_steps = max_steps
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.beta = beta
        self.likelihood = likelihood
        self.generation = generation
        self.temperature = temperature
        self.clip = clip
        self.category = category
        self.fit_rows = fit_rows
        self.activation = activation
        self.init = init
        self.bias_init = bias_init
        self.optimizer = optimizer
        self.l2 = l2
        self.clip_norm = clip_norm
        self.dropout = dropout
        self.patience = patience
        self.min_delta = min_delta
        self.scaling = scaling
        self.neighbors = neighbors
        self.backend = backend
        self.models = models
        self.verbose = verbose

    def _options(self, classes):
        names = [n for n in self._get_param_names() if n not in ("sampling_strategy", "random_state", "verbose")]
        opts = {n: getattr(self, n) for n in names}
        if self.verbose:
            opts["progress"] = _progress(classes)
        if opts["hidden"] is not None:
            opts["hidden"] = [int(h) for h in opts["hidden"]]
        if opts["models"] is not None:
            codes = {str(c): i for i, c in enumerate(classes.tolist())}
            opts["models"] = (str(opts["models"]), codes)
        return opts

    def fit_models(self, X, y, classes, binary_columns=None):
        """Fits the models of ``classes`` (labels of ``y``; one or more) from their rows of
        ``X``, as ``fit_resample`` would, whatever the other classes' sizes (``smrt fit
        --class``); :meth:`save_models` then writes them. Returns ``self``.

        ``binary_columns``: where ``X`` is a part of a larger table (a class's sample on a
        cluster), the numeric columns that hold two values in the whole table (names for a
        DataFrame, indices for an array): each is a yes/no variable, modelled by a two-way head.
        Default: the numeric columns with exactly two values in ``X``."""
        cols = None
        _refuse_sparse(X)
        if hasattr(X, "columns") and hasattr(X, "iloc"):
            x, codes, values, cols = _frame_parts(X)
        else:
            x = np.asarray(X, dtype=np.float32)
            if x.ndim != 2:
                raise ValueError(f"X must be 2-D (rows x features), got {x.ndim} dimension(s)")
            codes, values = np.zeros((x.shape[0], 0), np.uint32), []
        y_arr, _ = _target(y)
        if len(y_arr) != x.shape[0]:
            raise ValueError(f"X has {x.shape[0]} rows and y has {len(y_arr)} labels")
        known, y_codes = _encode(y_arr)
        index = {c: i for i, c in enumerate(known.tolist())}
        missing = [c for c in classes if c not in index]
        if missing:
            raise ValueError(f"classes {missing} are not in y (classes: {known.tolist()})")
        options = self._options(known)
        if binary_columns is not None:
            numeric = cols[0] if cols is not None else list(range(x.shape[1]))
            at = {name: j for j, name in enumerate(numeric)}
            unknown = [c for c in binary_columns if c not in at]
            if unknown:
                raise ValueError(f"binary_columns {unknown} are not numeric columns of X (numeric: {list(numeric)})")
            options["binary"] = [at[c] for c in binary_columns]
        with _labels_in_errors(known.tolist()):
            models = _smrt.fit_models(
                np.ascontiguousarray(x, dtype=np.float32),
                np.ascontiguousarray(codes, dtype=np.uint32),
                [len(v) for v in values],
                np.asarray(y_codes, dtype=np.int64),
                [index[c] for c in classes],
                self._seed(),
                options,
            )
        self._saved = _saved(models, X, y, cols, values, known, x.shape[1])
        return self

    def save_models(self, directory):
        """Writes the models of the last ``fit_resample`` as ``smrt fit`` does: the CLI's
        ``generate --models`` and ``balance --models`` read them, and so does
        ``SMRT(models=directory)``. Columns are named as the DataFrame's (``x0``, ``x1``, ... for
        arrays), the label as ``y``'s name (``label`` without one), classes by their text."""
        if not hasattr(self, "_saved"):
            raise ValueError("save_models needs a fitted SMRT: call fit_resample first")
        models, label, features, categories, class_names = self._saved
        models.save(str(directory), label, features, categories, class_names)


class SMOTE(_Sampler):
    """SMOTE (imbalanced-learn's semantics): a random row of the class plus a uniform fraction of
    the way to one of its ``k_neighbors`` nearest neighbours in the class. On a DataFrame with
    categorical columns it is SMOTE-NC, with every column categorical SMOTE-N.

    ``k_neighbors`` is a count, or, as imbalanced-learn takes it, a scikit-learn neighbours
    estimator with the Euclidean metric: its ``n_neighbors`` counts the row itself, so
    ``NearestNeighbors(n_neighbors=6)`` is ``k_neighbors=5``. smrt searches the exact neighbours
    itself; another metric is refused."""

    _method = "smote"

    def __init__(self, sampling_strategy="auto", random_state=None, k_neighbors=5, backend="auto"):
        self.sampling_strategy = sampling_strategy
        self.random_state = random_state
        self.k_neighbors = k_neighbors
        self.backend = backend

    def _options(self, classes):
        return {"k_neighbors": _neighbour_count(self.k_neighbors), "backend": self.backend}


def _neighbour_count(k_neighbors):
    """SMOTE's neighbour count from an int, or from a scikit-learn neighbours estimator (whose
    ``n_neighbors`` includes the row itself) that measures Euclidean distance."""
    if not hasattr(k_neighbors, "n_neighbors"):
        return int(k_neighbors)
    metric = getattr(k_neighbors, "metric", "minkowski")
    p = getattr(k_neighbors, "p", 2)
    euclidean = metric == "euclidean" or (metric == "minkowski" and p == 2)
    if not euclidean or getattr(k_neighbors, "metric_params", None):
        raise ValueError(
            f"k_neighbors: smrt's SMOTE finds exact Euclidean neighbours; {type(k_neighbors).__name__} "
            f"measures {metric!r} (p={p}). Give the count instead, k_neighbors={k_neighbors.n_neighbors - 1}"
        )
    return int(k_neighbors.n_neighbors) - 1


def _categorical_positions(categorical_features, X, width):
    """The column positions imbalanced-learn's ``categorical_features`` names: indices, a
    boolean mask, or column names of a DataFrame."""
    chosen = np.asarray(categorical_features)
    if chosen.dtype == bool:
        if chosen.shape != (width,):
            raise ValueError(f"categorical_features as a mask needs {width} entries, one per column; it has {chosen.size}")
        return np.flatnonzero(chosen).tolist()
    names = list(X.columns) if hasattr(X, "columns") else None
    positions = []
    for c in chosen.ravel().tolist():
        if isinstance(c, (int, np.integer)) and not isinstance(c, bool):
            if not -width <= c < width:
                raise ValueError(f"categorical_features names column {c}; X has {width} columns")
            positions.append(int(c) % width)
        elif names is not None and c in names:
            positions.append(names.index(c))
        else:
            raise ValueError(f"categorical_features names {c!r}, which is not a column of X")
    return sorted(set(positions))


class _ForcedCategorical(SMOTE):
    """SMOTE with some columns categorical whatever their dtype (a subclass's ``_forced(X,
    width)`` gives their positions, or None to go by dtype): they travel as a DataFrame's
    ``category`` columns and come back in X's own kind and dtypes."""

    def fit_resample(self, X, y):
        frame = hasattr(X, "columns") and hasattr(X, "iloc")
        arr = None if frame else np.asarray(X)
        # Sparse or not 2-D: the plain path refuses it with its message.
        forced = self._forced(X, X.shape[1] if frame else arr.shape[1]) if frame or arr.ndim == 2 else None
        if forced is None:
            return super().fit_resample(X, y)
        import pandas as pd

        data = X.copy() if frame else pd.DataFrame(arr)
        for i in forced:
            data.isetitem(i, data.iloc[:, i].astype("category"))
        out, labels = super().fit_resample(data, y)
        if frame:
            for i in forced:
                out.isetitem(i, out.iloc[:, i].astype(X.dtypes.iloc[i]))
            return out, labels
        del self.feature_names_in_
        rows = out.to_numpy(dtype=arr.dtype if arr.dtype.kind in "biuf" else object)
        if isinstance(X, list):
            return rows.tolist(), (np.asarray(labels).tolist() if isinstance(y, list) else labels)
        return rows, labels


class SMOTENC(_ForcedCategorical):
    """SMOTE-NC: :class:`SMOTE` with categorical columns. ``categorical_features`` says which, as
    in imbalanced-learn: column indices, a boolean mask, column names of a DataFrame, or
    ``'auto'`` (the default: a DataFrame's text, ``category`` and ``bool`` columns). Columns named
    are categorical whatever their dtype (integer codes, say); they come back in their dtype."""

    def __init__(self, categorical_features="auto", sampling_strategy="auto", random_state=None,
                 k_neighbors=5, backend="auto"):
        super().__init__(sampling_strategy=sampling_strategy, random_state=random_state,
                         k_neighbors=k_neighbors, backend=backend)
        self.categorical_features = categorical_features

    def _forced(self, X, width):
        if isinstance(self.categorical_features, str) and self.categorical_features == "auto":
            return None
        return _categorical_positions(self.categorical_features, X, width)


class SMOTEN(_ForcedCategorical):
    """SMOTE-N: :class:`SMOTE` with every column categorical, whatever its dtype (as
    imbalanced-learn's SMOTEN treats integer-coded columns)."""

    def _forced(self, X, width):
        return list(range(width))


class RandomOverSampler(_Sampler):
    """Copies of random rows of the class; ``shrinkage`` adds Gaussian noise to the numeric
    columns (a smoothed bootstrap, as imbalanced-learn's): a float for every class, or a dict
    ``{label: factor}`` with a factor for each class that grows."""

    _method = "random-over"

    def __init__(self, sampling_strategy="auto", random_state=None, shrinkage=None):
        self.sampling_strategy = sampling_strategy
        self.random_state = random_state
        self.shrinkage = shrinkage

    def _options(self, classes):
        if self.shrinkage is None:
            return {}
        if isinstance(self.shrinkage, dict):
            index = {c: i for i, c in enumerate(classes.tolist())}
            unknown = [k for k in self.shrinkage if k not in index]
            if unknown:
                raise ValueError(f"shrinkage names classes {unknown} that are not in y (classes: {classes.tolist()})")
            return {"shrinkage": {index[k]: float(v) for k, v in self.shrinkage.items()}}
        return {"shrinkage": float(self.shrinkage)}


class RandomUnderSampler(_Sampler):
    """A random subset of the rows of each large class (``'auto'``: every class down to the
    minority count; ``'majority'``, ``'not minority'``, ``'not majority'``, ``'all'``: those
    classes down to it, as in imbalanced-learn; a float ``r``: down to ``ceil(minority / r)``; a
    dict, or a function of ``y`` returning one: the count of each named class). With
    ``replacement=True`` the rows kept are drawn with replacement, as imbalanced-learn's."""

    _method = "random-under"

    def __init__(self, sampling_strategy="auto", random_state=None, replacement=False):
        self.sampling_strategy = sampling_strategy
        self.random_state = random_state
        self.replacement = replacement

    def _options(self, classes):
        return {"replacement": bool(self.replacement)}
