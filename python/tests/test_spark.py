"""smrt.spark on PySpark in local mode: the same rows for any partitioning, the schema kept."""

import os
import sys

import numpy as np
import pandas as pd
import pytest

pyspark = pytest.importorskip("pyspark", reason="pyspark is not installed (.ci/run installs it)")

import smrt  # noqa: E402
from smrt import _smrt  # noqa: E402
from smrt.spark import balance  # noqa: E402


@pytest.fixture(scope="module")
def spark():
    from pyspark.sql import SparkSession

    # The workers run this interpreter, where smrt is installed (as on any cluster, every
    # executor needs the package).
    os.environ["PYSPARK_PYTHON"] = sys.executable
    session = (
        SparkSession.builder.master("local[2]")
        .appName("smrt-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .getOrCreate()
    )
    yield session
    session.stop()


def table():
    rng = np.random.default_rng(7)
    n_common, n_rare = 600, 60
    n = n_common + n_rare
    rare = np.arange(n) >= n_common
    return pd.DataFrame({
        "id": [f"row-{i}" for i in range(n)],
        "a": rng.normal(size=n) + 3 * rare,
        "b": rng.normal(size=n) - 2 * rare,
        "count": rng.integers(0, 5, size=n) + 10 * rare,
        "tier": np.where(rare, rng.choice(["gold", "silver"], size=n), rng.choice(["basic", "gold"], size=n)),
        "label": np.where(rare, "rare", "common"),
    })


def rows(df):
    return sorted(tuple(r) for r in df.collect())


def test_smrt_rows_are_the_same_for_any_partitioning(spark):
    pdf = table()
    results = []
    for partitions in (1, 2, 4):
        df = spark.createDataFrame(pdf).repartition(partitions)
        out = balance(df, "label", random_state=3, mark="synthetic", fit_rows=40, rows_per_task=200,
                      epochs=5, min_steps=0, backend="cpu")
        results.append(rows(out))
        assert out.columns == list(pdf.columns) + ["synthetic"]
    assert results[0] == results[1] == results[2]
    out = pd.DataFrame(results[0], columns=list(pdf.columns) + ["synthetic"])
    assert (out["label"].value_counts() == 600).all()
    made = out[out["synthetic"] == 1]
    assert len(made) == 540 and (made["label"] == "rare").all()
    # The input rows, unchanged; synthetic rows typed as the schema: whole counts, the rare
    # class's categories only.
    real = out[out["synthetic"] == 0].drop(columns="synthetic").sort_values("id").reset_index(drop=True)
    pd.testing.assert_frame_equal(real, pdf.sort_values("id").reset_index(drop=True), check_dtype=False)
    assert set(made["tier"]) <= {"gold", "silver"}
    assert made["count"].dtype.kind == "i"
    # Another seed, other rows.
    other = balance(spark.createDataFrame(pdf), "label", random_state=4, fit_rows=40, epochs=5, min_steps=0,
                    backend="cpu")
    assert rows(other) != [r[:-1] for r in results[0]]


def test_the_tables_yes_no_columns_decide_each_class_fit(spark):
    import json

    from smrt.spark import _fit, _two_valued

    n = 300
    pdf = pd.DataFrame({
        "a": np.linspace(-1, 1, n),
        "flag": (np.arange(n) % 3 == 0).astype(np.int64),
        # 0, 1 and 2 in the table; the rare rows only 0 and 1.
        "three": np.where(np.arange(n) < 240, np.arange(n) % 3, np.arange(n) % 2),
        "same": np.full(n, 4.5),
        "label": np.where(np.arange(n) < 240, "common", "rare"),
    })
    df = spark.createDataFrame(pdf)
    features = ["a", "flag", "three", "same"]
    assert _two_valued(df, features) == ["flag"]
    models = _fit(df, "label", features, {"rare": 240}, {"common": 240, "rare": 60}, 3, 40, ["flag"],
                  {"epochs": 3, "min_steps": 0, "backend": "cpu"})
    files, _ = models["rare"]
    metas = [json.loads(data) for name, data in files.items() if name.endswith(".json")]
    meta = next(m for m in metas if m.get("info", {}).get("class") == "rare")
    assert meta["columns"]["binary"] == [1]


def test_under_sampling_by_row_key_is_the_same_for_any_partitioning(spark):
    pdf = table()
    kept = [rows(balance(spark.createDataFrame(pdf).repartition(p), "label", method="random-under",
                         row_key="id", random_state=5)) for p in (1, 2, 4)]
    assert kept[0] == kept[1] == kept[2]
    # imbalanced-learn's 'majority' names the one class 'auto' shrinks here.
    named = balance(spark.createDataFrame(pdf), "label", method="random-under", row_key="id",
                    random_state=5, sampling_strategy="majority")
    assert rows(named) == kept[0]
    # The rule of `smrt balance --row-key`: the rare class whole, the common one at 60 / 600.
    rate = np.where(pdf["label"] == "common", 60 / 600, 1.0)
    want = pdf[_smrt.keeps(list(pdf["id"]), rate, 5)]
    assert kept[0] == sorted(tuple(r) for r in want.itertuples(index=False))
    assert 60 - 30 < (want["label"] == "common").sum() < 60 + 30


def test_errors_name_the_way_out(spark):
    df = spark.createDataFrame(table())
    with pytest.raises(ValueError, match="fit SMRT from a sample"):
        balance(df, "label", method="smote")
    with pytest.raises(ValueError, match="needs row_key"):
        balance(df, "label", method="random-under")
    with pytest.raises(ValueError, match="not in the DataFrame"):
        balance(df, "label", sampling_strategy={"nope": 5})
    with pytest.raises(ValueError, match="give a dict"):
        balance(df, "label", sampling_strategy=lambda y: {"rare": 100})
    with pytest.raises(ValueError, match="'majority' cannot be used with an over-sampler"):
        balance(df, "label", sampling_strategy="majority")
    with pytest.raises(ValueError, match=r"no column 'nope' \(columns: \['id', 'a'"):
        balance(df, "nope")
    missing = table().astype({"label": object})
    missing.loc[[3, 9], "label"] = None
    with pytest.raises(ValueError, match="column 'label' is null in 2 row"):
        balance(spark.createDataFrame(missing), "label")
    assert smrt.spark.SPARK_FIT_ROWS == 20_000
