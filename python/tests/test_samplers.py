"""The Python package: imbalanced-learn's conventions, every input kind, errors, pipelines."""

import os
import shutil
import signal
import subprocess
import threading
import time

import numpy as np
import pandas as pd
import pytest
from imblearn.pipeline import Pipeline
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_validate

import smrt

os.environ.setdefault("SMRT_BACKEND", "cpu")

FAST = {"epochs": 5, "min_steps": 0}  # keeps SMRT's fits short in tests


def samplers():
    return [
        smrt.SMRT(random_state=1, backend="cpu", **FAST),
        smrt.SMOTE(random_state=1, k_neighbors=3),
        smrt.RandomOverSampler(random_state=1),
        smrt.RandomOverSampler(random_state=1, shrinkage=0.5),
    ]


def data(n_major=60, n_minor=12, d=3, seed=0):
    rng = np.random.default_rng(seed)
    X = np.vstack([rng.normal(size=(n_major, d)), rng.normal(3.0, 1.0, size=(n_minor, d))])
    y = np.array(["common"] * n_major + ["rare"] * n_minor)
    return X, y


@pytest.mark.parametrize("sampler", samplers(), ids=lambda s: type(s).__name__)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("order", ["C", "F"])
def test_numpy_in_numpy_out(sampler, dtype, order):
    X, y = data()
    X = np.asarray(X, dtype=dtype, order=order)
    Xr, yr = sampler.fit_resample(X, y)
    assert Xr.dtype == dtype
    assert Xr.shape == (120, 3)
    # Input rows first and unchanged, then the synthetic rows of the rare class.
    np.testing.assert_array_equal(Xr[:72], X)
    assert list(yr[:72]) == list(y)
    assert (yr[72:] == "rare").all()
    assert sampler.synthetic_.tolist() == [False] * 72 + [True] * 48
    assert (sampler.sample_indices_[:72] == np.arange(72)).all()
    sources = sampler.sample_indices_[72:]
    if not isinstance(sampler, smrt.SMRT):  # prior draws have no source row
        assert ((sources >= 60) & (sources < 72)).all()


@pytest.mark.parametrize("sampler", samplers(), ids=lambda s: type(s).__name__)
def test_every_memory_layout_gives_the_same_rows(sampler):
    # C-ordered float arrays are assembled on every core, other layouts by NumPy: same result.
    X, y = data(n_major=300, n_minor=25, d=5)
    want, _ = sampler.fit_resample(np.ascontiguousarray(X), y)
    for other in (np.asfortranarray(X), X[:, ::-1].copy()[:, ::-1], X.tolist()):
        got, _ = sampler.fit_resample(other, y)
        np.testing.assert_array_equal(np.asarray(got), want)


@pytest.mark.parametrize(
    "sampler",
    [smrt.SMOTE(random_state=3), smrt.RandomOverSampler(random_state=3, shrinkage=0.3)],
    ids=["SMOTE", "RandomOverSampler"],
)
@pytest.mark.parametrize("strategy", ["auto", "minority", 0.8, {"b": 50, "d": 44}])
def test_c_ordered_arrays_take_the_direct_path_to_the_same_rows(sampler, strategy):
    # C-ordered float32/float64 arrays go through `_smrt.oversample`, which hands smrt only the
    # classes that grow; a Fortran-ordered copy takes the general path. Classes interleaved.
    rng = np.random.default_rng(5)
    y = rng.choice(np.array(["a", "b", "c", "d"]), size=200, p=[0.5, 0.2, 0.2, 0.1])
    X = rng.normal(size=(200, 4)) + (y == "b")[:, None]
    sampler.set_params(sampling_strategy=strategy)
    for dtype in (np.float64, np.float32):
        got, got_y = sampler.fit_resample(np.ascontiguousarray(X, dtype=dtype), y)
        got_sources = sampler.sample_indices_
        want, want_y = sampler.fit_resample(np.asfortranarray(X, dtype=dtype), y)
        assert got.dtype == dtype
        np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(got_y, want_y)
        np.testing.assert_array_equal(got_sources, sampler.sample_indices_)


def test_labels_may_be_a_strided_view():
    # Integer labels 0..C-1 serve as their own codes: a column of a 2-D array must work too.
    X, _ = data(n_major=30, n_minor=6)
    Y = np.zeros((36, 2), dtype=np.int64)
    Y[30:, 0] = 1
    for sampler in (smrt.SMOTE(random_state=0, k_neighbors=3), smrt.RandomOverSampler(random_state=0)):
        got, got_y = sampler.fit_resample(X, Y[:, 0])
        want, want_y = sampler.fit_resample(X, Y[:, 0].copy())
        np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(got_y, want_y)
        assert (np.bincount(got_y) == 30).all()


def test_strategies_and_multiclass():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(70, 2))
    y = np.array([0] * 40 + [1] * 20 + [2] * 10)
    counts = lambda yr: dict(zip(*np.unique(yr, return_counts=True)))
    assert counts(smrt.SMOTE().fit_resample(X, y)[1]) == {0: 40, 1: 40, 2: 40}
    assert counts(smrt.SMOTE(sampling_strategy="minority").fit_resample(X, y)[1]) == {0: 40, 1: 20, 2: 40}
    assert counts(smrt.SMOTE(sampling_strategy=0.75).fit_resample(X, y)[1]) == {0: 40, 1: 30, 2: 30}
    assert counts(smrt.SMOTE(sampling_strategy={2: 25}).fit_resample(X, y)[1]) == {0: 40, 1: 20, 2: 25}
    assert counts(smrt.RandomUnderSampler().fit_resample(X, y)[1]) == {0: 10, 1: 10, 2: 10}


def test_pandas_mixed_frame_keeps_columns_dtypes_and_class_categories():
    rng = np.random.default_rng(2)
    n = 48
    df = pd.DataFrame(
        {
            "age": rng.integers(20, 70, n),
            "plan": pd.Categorical(rng.choice(["basic", "pro"], n)),
            "city": rng.choice(["Oslo", "Lyon, FR", "Paris"], n),
            "active": rng.choice([True, False], n),
            "spend": rng.normal(100, 20, n),
        }
    )
    y = pd.Series(["stay"] * 40 + ["churn"] * 8, name="target")
    df.loc[40:, "city"] = ["Lyon, FR", "Oslo"] * 4
    for sampler in [smrt.SMOTE(k_neighbors=3), smrt.SMRT(**FAST), smrt.RandomOverSampler(shrinkage=1.0)]:
        Xr, yr = sampler.fit_resample(df, y)
        assert list(Xr.columns) == list(df.columns)
        assert Xr.dtypes.to_dict() == df.dtypes.to_dict()
        assert isinstance(yr, pd.Series) and yr.name == "target"
        pd.testing.assert_frame_equal(Xr.iloc[:48].reset_index(drop=True), df.reset_index(drop=True))
        synthetic = Xr.iloc[48:]
        assert len(synthetic) == 32 and (yr.iloc[48:] == "churn").all()
        assert set(synthetic["city"]) <= {"Lyon, FR", "Oslo"}
        assert set(synthetic["plan"]) <= set(df["plan"].iloc[40:])
        assert set(synthetic["active"]) <= set(df["active"].iloc[40:])


def test_lists_in_lists_out_and_integer_labels():
    X, y = data()
    Xr, yr = smrt.RandomOverSampler().fit_resample(X.tolist(), [int(v == "rare") for v in y])
    assert isinstance(Xr, list) and isinstance(yr, list)
    assert len(Xr) == 120 and Xr[:72] == X.tolist()
    assert sorted(set(yr)) == [0, 1]


@pytest.mark.parametrize("codes", [[7, 3], [-5, 1000000000000], [np.uint8(2), np.uint8(0)]], ids=str)
def test_integer_labels_of_any_range_give_the_rows_string_labels_give(codes):
    """Small non-negative labels take a counting path, others a sort: the same classes, order and rows."""
    X, y = data()
    common, rare = codes
    as_int = np.where(y == "rare", rare, common).astype(np.asarray(codes).dtype)
    Xi, yi = smrt.SMOTE(random_state=3).fit_resample(X, as_int)
    sampler = smrt.SMOTE(random_state=3)
    # String labels in the same sorted order as the integers.
    order = {min(common, rare): "a", max(common, rare): "b"}
    Xs, ys = sampler.fit_resample(X, np.array([order[v] for v in as_int.tolist()]))
    np.testing.assert_array_equal(Xi, Xs)
    assert yi.dtype == as_int.dtype
    assert [order[v] for v in yi.tolist()] == ys.tolist()
    assert set(smrt.SMOTE().fit(X, as_int).sampling_strategy_) == {rare}


def test_shrinkage_per_class_as_imbalanced_learn_takes_it():
    rng = np.random.default_rng(4)
    X = rng.normal(size=(90, 2))
    y = np.array(["a"] * 50 + ["b"] * 25 + ["c"] * 15)
    run = lambda s: smrt.RandomOverSampler(shrinkage=s, random_state=0).fit_resample(X, y)
    mixed, labels = run({"b": 0.0, "c": 0.8})
    exact, _ = run(0.0)
    smooth, _ = run(0.8)
    b, c = labels == "b", labels == "c"
    np.testing.assert_array_equal(mixed[b], exact[b])
    np.testing.assert_array_equal(mixed[c], smooth[c])
    assert not np.array_equal(mixed[c], exact[c])
    with pytest.raises(ValueError, match="class 'c' has no shrinkage factor"):
        run({"b": 0.5})
    with pytest.raises(ValueError, match=r"shrinkage names classes \['z'\]"):
        run({"b": 0.5, "c": 0.5, "z": 1.0})
    assert smrt.RandomOverSampler(shrinkage={"b": 0.5}).get_params()["shrinkage"] == {"b": 0.5}


def test_under_sampling_with_replacement():
    X, y = data(n_major=400, n_minor=300)
    plain = smrt.RandomUnderSampler(random_state=0).fit(X, y)
    again = smrt.RandomUnderSampler(random_state=0, replacement=True).fit(X, y)
    for sampler, repeats in [(plain, False), (again, True)]:
        kept = sampler.sample_indices_
        assert len(kept) == 600 and (np.asarray(y)[kept] == "common").sum() == 300
        assert (len(np.unique(kept)) < len(kept)) == repeats
    assert clone(again).get_params()["replacement"] is True


def test_smote_takes_a_neighbours_estimator_as_imbalanced_learn_does():
    from sklearn.neighbors import NearestNeighbors

    X, y = data()
    by_count, _ = smrt.SMOTE(k_neighbors=3, random_state=2).fit_resample(X, y)
    by_estimator, _ = smrt.SMOTE(k_neighbors=NearestNeighbors(n_neighbors=4), random_state=2).fit_resample(X, y)
    np.testing.assert_array_equal(by_count, by_estimator)
    with pytest.raises(ValueError, match=r"Euclidean .* k_neighbors=3"):
        smrt.SMOTE(k_neighbors=NearestNeighbors(n_neighbors=4, metric="manhattan")).fit_resample(X, y)


def test_fitted_sampling_strategy_follows_imbalanced_learn():
    X, y = data()
    over = smrt.SMOTE().fit(X, y)
    assert over.sampling_strategy_ == {"rare": 48}
    under = smrt.RandomUnderSampler().fit(X, y)
    assert under.sampling_strategy_ == {"common": 12}


def test_named_and_callable_strategies_give_imbalanced_learns_counts():
    from collections import Counter

    import imblearn.over_sampling as io
    import imblearn.under_sampling as iu

    rng = np.random.default_rng(0)
    X = rng.normal(size=(90, 2))
    y = np.array(["a"] * 50 + ["b"] * 25 + ["c"] * 15)
    pairs = [
        (smrt.RandomOverSampler, io.RandomOverSampler, ["auto", "all", "minority", "not minority", "not majority"]),
        (smrt.SMOTE, io.SMOTE, ["all", "not minority"]),
        (smrt.RandomUnderSampler, iu.RandomUnderSampler, ["auto", "all", "majority", "not minority", "not majority"]),
    ]
    for ours, theirs, names in pairs:
        for name in names + [lambda y: {"b": 40 if ours is not smrt.RandomUnderSampler else 20}]:
            got = Counter(ours(sampling_strategy=name, random_state=0).fit_resample(X, y)[1].tolist())
            want = Counter(theirs(sampling_strategy=name, random_state=0).fit_resample(X, y)[1].tolist())
            assert got == want, (ours.__name__, name, got, want)
    with pytest.raises(ValueError, match="'majority' cannot be used with an over-sampler"):
        smrt.SMOTE(sampling_strategy="majority").fit_resample(X, y)
    with pytest.raises(ValueError, match="'minority' cannot be used with an under-sampler"):
        smrt.RandomUnderSampler(sampling_strategy="minority").fit_resample(X, y)
    with pytest.raises(ValueError, match="must return a dict"):
        smrt.SMOTE(sampling_strategy=lambda y: 0.5).fit_resample(X, y)


def test_smotenc_takes_categorical_features_and_smoten_integer_codes():
    from collections import Counter

    import imblearn.over_sampling as io

    rng = np.random.default_rng(3)
    X = np.c_[rng.normal(size=(72, 2)), rng.integers(0, 3, size=72)]
    y = np.array(["common"] * 60 + ["rare"] * 12)
    by_index, labels = smrt.SMOTENC(categorical_features=[2], random_state=0).fit_resample(X, y)
    by_mask, _ = smrt.SMOTENC(categorical_features=[False, False, True], random_state=0).fit_resample(X, y)
    np.testing.assert_array_equal(by_index, by_mask)
    assert by_index.dtype == X.dtype
    np.testing.assert_array_equal(by_index[:72], X)
    assert set(by_index[72:, 2]) <= {0.0, 1.0, 2.0}, "a categorical column keeps its values"
    assert not set(by_index[72:, 0]) <= set(X[:, 0]), "numeric columns are interpolated"
    theirs = io.SMOTENC(categorical_features=[2], random_state=0).fit_resample(X, y)[1]
    assert Counter(labels.tolist()) == Counter(theirs.tolist())
    # Names on a DataFrame; the column keeps its integer dtype.
    frame = pd.DataFrame(X, columns=["u", "v", "code"]).astype({"code": np.int64})
    out, _ = smrt.SMOTENC(categorical_features=["code"], random_state=0).fit_resample(frame, y)
    assert out["code"].dtype == np.int64 and set(out["code"]) <= {0, 1, 2}
    np.testing.assert_array_equal(out[["u", "v"]].to_numpy(), by_index[:, :2])
    # SMOTEN: every column categorical, integer codes included.
    codes = rng.integers(0, 4, size=(72, 3))
    made, _ = smrt.SMOTEN(random_state=0).fit_resample(codes, y)
    assert made.dtype == codes.dtype and set(made[72:].ravel().tolist()) <= {0, 1, 2, 3}
    for bad, message in [([3], "names column 3"), ([True, False], "needs 3 entries"), (["nope"], "not a column")]:
        with pytest.raises(ValueError, match=message):
            smrt.SMOTENC(categorical_features=bad).fit_resample(X, y)


def test_clone_round_trips_every_parameter():
    s = smrt.SMRT(hidden=[32, 16], latent=0.5, epochs=7, generation="residual", temperature=0.5,
                  category="sample", random_state=3, sampling_strategy=0.5, optimizer="sgd",
                  patience=4, min_delta=0.01, clip_norm=0)
    c = clone(s)
    assert c.get_params() == s.get_params()
    assert c is not s
    c.set_params(epochs=9)
    assert c.epochs == 9 and s.epochs == 7
    with pytest.raises(ValueError, match="invalid parameter 'nope'"):
        c.set_params(nope=1)


@pytest.mark.parametrize("setting", [
    {"activation": "tanh"}, {"init": "he-normal"}, {"bias_init": "ones"}, {"optimizer": "sgd"},
    {"l2": 0.5}, {"clip_norm": 1e-3}, {"dropout": 0.3}, {"scaling": "min-max"},
    {"patience": 1, "min_delta": 1e6},
], ids=lambda d: "-".join(d))
def test_every_network_setting_reaches_the_fit(setting):
    X, y = data()
    default, _ = smrt.SMRT(random_state=1, backend="cpu", **FAST).fit_resample(X, y)
    changed, _ = smrt.SMRT(random_state=1, backend="cpu", **FAST, **setting).fit_resample(X, y)
    assert changed.shape == default.shape
    np.testing.assert_array_equal(changed[:72], X)
    assert not np.array_equal(changed[72:], default[72:]), setting


def test_neighbors_and_bad_network_settings():
    X, y = data()
    draws = [smrt.SMRT(random_state=1, backend="cpu", generation="interpolate", neighbors=k, **FAST)
             .fit_resample(X, y)[0][72:] for k in (1, 5)]
    assert not np.array_equal(*draws)
    for setting, message in [({"activation": "swish"}, "activation"), ({"dropout": 1.5}, "dropout"),
                             ({"clip_norm": -1.0}, "clip_norm"), ({"min_delta": 0.1}, "give patience too"),
                             ({"patience": 0}, "patience"), ({"l2": -1.0}, "l2")]:
        with pytest.raises(ValueError, match=message):
            smrt.SMRT(backend="cpu", **FAST, **setting).fit_resample(X, y)


@pytest.mark.parametrize("sampler", samplers(), ids=lambda s: type(s).__name__)
def test_same_random_state_same_rows(sampler):
    X, y = data()
    a, _ = clone(sampler).fit_resample(X, y)
    b, _ = clone(sampler).fit_resample(X, y)
    np.testing.assert_array_equal(a, b)
    other = clone(sampler).set_params(random_state=2).fit_resample(X, y)[0]
    assert not np.array_equal(a[72:], other[72:])


def test_fit_rows_fits_large_classes_from_a_sample():
    X, y = data()  # 60 common, 12 rare
    full, _ = smrt.SMRT(epochs=5, random_state=1).fit_resample(X, y)
    same, _ = smrt.SMRT(epochs=5, random_state=1, fit_rows=12).fit_resample(X, y)
    np.testing.assert_array_equal(same, full)  # the rare class has 12 rows: all of them
    fewer, _ = smrt.SMRT(epochs=5, random_state=1, fit_rows=6).fit_resample(X, y)
    assert fewer.shape == full.shape and not np.array_equal(fewer[72:], full[72:])
    with pytest.raises(ValueError, match="at least 2 rows"):
        smrt.SMRT(fit_rows=1).fit_resample(X, y)


def test_bad_input_is_a_value_error_with_smrts_message():
    X, y = data()
    bad = X.copy()
    bad[5, 1] = np.nan
    with pytest.raises(ValueError, match="non-finite value NaN at row 5, column 1"):
        smrt.SMOTE().fit_resample(bad, y)
    # Rows of the class that grows, and values beyond float32's range, too.
    for dtype in (np.float64, np.float32):
        for sampler in (smrt.SMOTE(), smrt.RandomOverSampler()):
            for row, col, value in [(5, 1, np.nan), (65, 2, np.nan), (70, 0, -np.inf)]:
                bad = X.astype(dtype)
                bad[row, col] = value
                text = "NaN" if np.isnan(value) else "-inf"
                with pytest.raises(ValueError, match=f"non-finite value {text} at row {row}, column {col}"):
                    sampler.fit_resample(bad, y)
    huge = X.copy()
    huge[3, 2] = 1e300
    with pytest.raises(ValueError, match="non-finite value inf at row 3, column 2"):
        smrt.SMOTE().fit_resample(huge, y)
    # float64 values that round to float32's largest are finite; from half a step above, not.
    edge = float(np.finfo(np.float32).max) + 2.0**103
    for value, finite in [(np.nextafter(edge, 0), True), (edge, False), (-edge, False)]:
        near = X.copy()
        near[4, 0] = value
        if finite:
            assert smrt.SMOTE().fit_resample(near, y)[0][4, 0] == value
        else:
            with pytest.raises(ValueError, match="non-finite value -?inf at row 4, column 0"):
                smrt.SMOTE().fit_resample(near, y)
    with pytest.raises(ValueError, match="X has 72 rows and y has 71 labels"):
        smrt.SMOTE().fit_resample(X, y[:-1])
    with pytest.raises(ValueError, match="must be 2-D"):
        smrt.SMOTE().fit_resample(X[:, 0], y)
    with pytest.raises(ValueError, match="at least 2 classes"):
        smrt.SMOTE().fit_resample(X, ["a"] * 72)
    with pytest.raises(ValueError, match="not in y"):
        smrt.SMOTE(sampling_strategy={"nope": 80}).fit_resample(X, y)
    with pytest.raises(ValueError, match="'auto', 'all', 'minority', 'majority', 'not minority'"):
        smrt.SMOTE(sampling_strategy="everything").fit_resample(X, y)
    with pytest.raises(ValueError, match="generation"):
        smrt.SMRT(generation="sideways", **FAST).fit_resample(X, y)
    # A class too small to model is named by its label, as y holds it.
    lonely = np.r_[y[:-1], ["lonely"]]
    for sampler in [smrt.SMRT(**FAST), smrt.SMOTE()]:
        with pytest.raises(ValueError, match=r"^class 'lonely' has 1 row\(s\)"):
            sampler.fit_resample(X, lonely)
    numbers = np.r_[np.zeros(60), np.ones(11), [7.0]]
    with pytest.raises(ValueError, match=r"^class 7.0 has 1 row\(s\)"):
        smrt.SMOTE().fit_resample(X, numbers)
    with pytest.raises(ValueError, match=r"class 'lonely' has 1 row\(s\)"):
        smrt.SMRT(**FAST).fit_models(X, lonely, ["lonely"])
    from scipy import sparse
    for sampler in samplers():
        with pytest.raises(ValueError, match=r"sparse X is not supported: pass a dense array \(X.toarray\(\)\)"):
            sampler.fit_resample(sparse.csr_matrix(X), y)
    with pytest.raises(ValueError, match="sparse X is not supported"):
        smrt.SMRT(**FAST).fit_models(sparse.csr_array(X), y, ["rare"])
    # A missing label is refused, as scikit-learn refuses it.
    for missing in [np.nan, np.inf]:
        with pytest.raises(ValueError, match=f"y holds {missing} at row 71"):
            smrt.SMOTE().fit_resample(X, np.r_[np.zeros(60), np.ones(11), [missing]])
    for missing in [None, np.nan, pd.NA]:
        with pytest.raises(ValueError, match=f"y holds {missing} at row 71"):
            smrt.SMOTE().fit_resample(X, pd.Series([*y[:-1], missing], dtype=object))
    # Columns are found by name, so a name given to two columns is refused (as scikit-learn does).
    repeated = pd.DataFrame(X, columns=["a", "a", "b"])
    for sampler in samplers():
        with pytest.raises(ValueError, match=r"unique; repeated: 'a' \(2 columns\)"):
            sampler.fit_resample(repeated, y)
    with pytest.raises(ValueError, match="unique"):
        smrt.SMRT(**FAST).fit_models(repeated, y, ["rare"])


def test_pipeline_and_cross_validation():
    X, y = data(n_major=120, n_minor=24)
    for sampler in [smrt.SMOTE(random_state=0), smrt.SMRT(random_state=0, **FAST)]:
        pipe = Pipeline([("balance", sampler), ("model", LogisticRegression())])
        scores = cross_validate(pipe, X, y, cv=3, scoring="balanced_accuracy")
        assert scores["test_score"].mean() > 0.8


def test_info_and_version():
    assert "auto:" in smrt.info()
    assert smrt.__version__.count(".") == 2


def test_models_saved_in_python_serve_smrt_and_the_cli(tmp_path):
    X, y = data()
    df = pd.DataFrame(X, columns=["a", "b", "c"])
    df["tier"] = np.where(X[:, 0] > 0, "gold", "basic")
    ys = pd.Series(y, name="kind")
    first_sampler = smrt.SMRT(random_state=4, **FAST)
    first, _ = first_sampler.fit_resample(df, ys)
    models = tmp_path / "models"
    first_sampler.save_models(models)
    # Reused: no training, the same rows.
    again, _ = smrt.SMRT(random_state=4, models=str(models), **FAST).fit_resample(df, ys)
    pd.testing.assert_frame_equal(first, again)
    # A category the models never saw is refused by name.
    other = df.copy()
    other.loc[0, "tier"] = "platinum"
    with pytest.raises(ValueError, match="'platinum' of column 'tier'"):
        smrt.SMRT(models=str(models), **FAST).fit_resample(other, ys)
    # The command line draws from them.
    binary = os.environ.get("SMRT_BIN") or shutil.which("smrt")
    if binary is None:
        pytest.skip("no smrt binary to run: set SMRT_BIN (.ci/run does)")
    out = tmp_path / "drawn.csv"
    data_file = tmp_path / "data.csv"
    df.assign(kind=ys).to_csv(data_file, index=False)
    # `--input`: the models may draw from real rows (auto chooses per class).
    run = subprocess.run(
        [binary, "generate", "--models", str(models), "--class", "rare", "--n", "30", "--output", str(out),
         "--input", str(data_file), "--label", "kind"],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    drawn = pd.read_csv(out)
    assert list(drawn.columns) == ["a", "b", "c", "tier", "kind"]
    assert len(drawn) == 30 and (drawn["kind"] == "rare").all()
    assert set(drawn["tier"]) <= set(df["tier"][60:])
    # smrt.generate draws the rows the command line writes.
    made = smrt.generate(models, "rare", 30, X=df, y=ys)
    assert list(made.columns) == ["a", "b", "c", "tier"]
    assert (made["tier"] == drawn["tier"]).all()
    np.testing.assert_allclose(made[["a", "b", "c"]], drawn[["a", "b", "c"]], rtol=1e-6)
    with pytest.raises(ValueError, match="unique"):
        smrt.generate(models, "rare", 30, X=df.rename(columns={"b": "a"}), y=ys)


def saved_binary_columns(directory, cls):
    """The yes/no columns (indices among the numeric ones) of class ``cls``'s saved model."""
    import json

    for name in os.listdir(directory):
        meta = json.loads((directory / name).read_text()) if name.endswith(".json") else {}
        if meta.get("info", {}).get("class") == cls:
            return meta["columns"].get("binary", [])
    raise AssertionError(f"no model of class {cls} in {directory}")


def test_yes_no_columns_come_from_the_rows_or_from_binary_columns(tmp_path):
    # "flag" holds 0 and 1; "three" 0, 1 and 2 in the table, but only 0 and 1 among the rare rows.
    n = 72
    df = pd.DataFrame({
        "a": np.linspace(-1, 1, n),
        "flag": (np.arange(n) % 3 == 0).astype(float),
        "three": np.where(np.arange(n) < 60, np.arange(n) % 3, np.arange(n) % 2).astype(float),
        "tier": np.where(np.arange(n) % 2 == 0, "gold", "basic"),
    })
    y = np.array(["common"] * 60 + ["rare"] * 12)
    rare = df.iloc[60:]
    # The rare rows alone: both columns hold two values there.
    sampler = smrt.SMRT(random_state=1, **FAST).fit_models(rare, y[60:], ["rare"])
    sampler.save_models(tmp_path / "alone")
    assert saved_binary_columns(tmp_path / "alone", "rare") == [1, 2]
    # The same rows as a part of the table: only the table's yes/no column.
    sampler = smrt.SMRT(random_state=1, **FAST).fit_models(rare, y[60:], ["rare"], binary_columns=["flag"])
    sampler.save_models(tmp_path / "part")
    assert saved_binary_columns(tmp_path / "part", "rare") == [1]
    # The whole table finds that by itself.
    sampler = smrt.SMRT(random_state=1, **FAST).fit_models(df, y, ["rare"])
    sampler.save_models(tmp_path / "table")
    assert saved_binary_columns(tmp_path / "table", "rare") == [1]
    with pytest.raises(ValueError, match="not numeric columns"):
        smrt.SMRT(**FAST).fit_models(rare, y[60:], ["rare"], binary_columns=["tier"])
    with pytest.raises(ValueError, match="yes/no column"):
        smrt.SMRT(**FAST).fit_models(df, y, ["common"], binary_columns=["three"])


def test_generate_in_shards_and_its_errors(tmp_path):
    X, y = data()
    sampler = smrt.SMRT(random_state=2, generation="residual", **FAST)
    sampler.fit_resample(X, y)
    models = tmp_path / "models"
    sampler.save_models(models)
    whole = smrt.generate(models, "rare", 50, random_state=5, X=X, y=y)
    assert whole.shape == (50, 3) and whole.dtype == np.float64
    for count in (1, 3, 7):
        parts = [smrt.generate(models, "rare", 50, random_state=5, shard=(k, count), X=X, y=y)
                 for k in range(1, count + 1)]
        np.testing.assert_array_equal(np.concatenate(parts), whole)
    # Residual rows start from the class's rows: without them, smrt's error.
    with pytest.raises(ValueError, match="rows"):
        smrt.generate(models, "rare", 5)
    prior = smrt.generate(models, "rare", 5, generation="prior")
    assert prior.shape == (5, 3)
    with pytest.raises(ValueError, match="no model for class 'common'"):
        smrt.generate(models, "common", 5)
    with pytest.raises(ValueError, match="4/3"):
        smrt.generate(models, "rare", 5, generation="prior", shard=(4, 3))


def test_ctrl_c_stops_a_long_fit_with_keyboard_interrupt():
    X, y = data()
    sampler = smrt.SMRT(epochs=10**6, min_steps=0, max_steps=10**9, backend="cpu")
    # Python's own Ctrl-C handler, also where the test runner was started with SIGINT ignored
    # (a background job of a shell without job control).
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    timer = threading.Timer(0.3, lambda: os.kill(os.getpid(), signal.SIGINT))
    started = time.monotonic()
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            sampler.fit_resample(X, y)
    finally:
        timer.cancel()
        signal.signal(signal.SIGINT, previous)
    assert time.monotonic() - started < 5


def test_verbose_reports_epochs(capsys):
    X, y = data()
    smrt.SMRT(epochs=150, min_steps=0, verbose=True, backend="cpu").fit_resample(X, y)
    err = capsys.readouterr().err
    assert "smrt: class rare: epoch 0," in err and "epoch 100," in err
