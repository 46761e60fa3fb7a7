"""Balancing a PySpark DataFrame with smrt, on the executors Spark already has.

``balance(df, label, method="smrt")`` returns ``df`` plus synthetic rows (same schema, optionally
a 0/1 mark column). What runs where:

* class counts: one ``groupBy(label).count()``; only the counts reach the driver;
* the table's yes/no columns (numeric columns with exactly two values): two aggregations (each
  column's least and greatest value, then how many rows hold another); only a row of figures
  reaches the driver. Each class's fit takes them, so a column that a class's sample holds two
  values of is no yes/no column unless the table's is one;
* fitting (SMRT): each class that grows is fitted from a sample of at most about ``fit_rows`` of
  its rows, chosen row by row by a seeded hash of the row's values (``xxhash64``), so the same
  rows whatever the partitioning; the samples are fitted on the executors, one class per task
  (``groupBy(label).applyInPandas``), and only the model files (a few hundred KB) and the sample
  come back to the driver, which broadcasts them;
* generation: the rows a class needs are cut into shards of ``rows_per_task`` rows, one task
  each (``mapInPandas``); every synthetic row is addressed by (seed, row number), so the rows are
  the same for any number of partitions and executors (their order aside);
* random under-sampling (``method="random-under"``): each row kept by the seeded hash of its
  ``row_key`` column against its class's keep rate (the rule of ``smrt balance --row-key``),
  decided where the row is; counts are kept in expectation, not exactly.

SMOTE is not offered: it interpolates between a class's rows and their exact neighbours, which
needs every row of the class in one place. Fit SMRT from a sample instead.
"""

import hashlib
import os
import pickle
import tempfile

import numpy as np

from . import SMRT, _named_targets, _smrt, generate

#: Rows per class a Spark fit samples by default: the sample is also what residual generation
#: starts from, and it is broadcast to every generating task.
SPARK_FIT_ROWS = 20_000

#: Synthetic rows per generating task by default.
ROWS_PER_TASK = 100_000

_HASH_RANGE = 1 << 30


def balance(df, label, method="smrt", sampling_strategy="auto", random_state=0, mark=None,
            row_key=None, fit_rows=SPARK_FIT_ROWS, rows_per_task=ROWS_PER_TASK, **settings):
    """``df`` (a PySpark DataFrame) balanced on column ``label``.

    ``method``: ``"smrt"`` (every SMRT keyword of :class:`smrt.SMRT` may follow, for example
    ``epochs=200``) or ``"random-under"`` (needs ``row_key``, a column holding a unique, stable
    key per row). ``sampling_strategy`` as in :class:`smrt.SMRT` (``'auto'``, imbalanced-learn's
    named selections, a float, a dict of final counts; not a function of ``y``). ``mark``: the name of an added int column, 1 on synthetic rows and 0 on the
    input's. The same ``random_state`` gives the same rows for any partitioning.
    """
    from pyspark.sql import functions as F

    seed = int(random_state)
    if label not in df.columns:
        raise ValueError(f"no column {label!r} (columns: {df.columns})")
    counts = {row[0]: int(row[1]) for row in df.groupBy(label).count().collect()}
    if not counts:
        raise ValueError("the DataFrame has no rows")
    if None in counts:
        raise ValueError(f"column {label!r} is null in {counts[None]} row(s): every row needs a class label")
    classes = sorted(counts, key=str)
    if method == "random-under":
        return _under(df, label, classes, counts, sampling_strategy, seed, row_key, mark)
    if method != "smrt":
        raise ValueError(
            f"smrt.spark balances with method 'smrt' or 'random-under', not {method!r}: SMOTE needs "
            "every row of a class in one place (its exact neighbours); fit SMRT from a sample instead"
        )
    if row_key is not None:
        raise ValueError("row_key decides random under-sampling; use it with method='random-under'")
    strategy = _strategy(sampling_strategy, classes, counts, True)
    plan = _smrt.plan([counts[c] for c in classes], strategy, False)
    grow = {classes[code]: n for code, n in plan.items()}
    base = df.withColumn(mark, F.lit(0)) if mark else df
    if not grow:
        return base
    features = [c for c in df.columns if c != label]
    binary = _two_valued(df, features)
    models = _fit(df, label, features, grow, counts, seed, int(fit_rows), binary, settings)
    spark = df.sparkSession
    shared = spark.sparkContext.broadcast(models)
    names = {str(c): c for c in grow}
    tasks = []
    for c, n in sorted(grow.items(), key=lambda kv: str(kv[0])):
        shards = max(1, -(-n // int(rows_per_task)))
        tasks += [(str(c), k, shards, n) for k in range(1, shards + 1)]
    schema = base.schema
    fields = {f.name: f.dataType for f in schema.fields}

    def draw(batches):
        import pandas as pd

        for tasks_pdf in batches:
            for cls, k, shards, n in tasks_pdf.itertuples(index=False):
                directory, sample = _materialised(shared.value, cls)
                made = generate(directory, cls, int(n), random_state=seed, shard=(int(k), int(shards)),
                                X=sample[features], y=sample[label].astype(str))
                if not hasattr(made, "columns"):
                    made = pd.DataFrame(made, columns=features)
                made = made.reset_index(drop=True)
                made[label] = [names[cls]] * len(made)
                if mark:
                    made[mark] = 1
                yield _typed(made[schema.names], fields)

    tasks_df = spark.createDataFrame(tasks, "cls string, k long, shards long, n long")
    tasks_df = tasks_df.repartition(max(1, min(len(tasks), spark.sparkContext.defaultParallelism)))
    return base.unionByName(tasks_df.mapInPandas(draw, schema))


def _strategy(sampling_strategy, classes, counts, over):
    """The strategy with a dict's labels replaced by their class numbers (for ``_smrt.plan``),
    imbalanced-learn's named selections made dicts first (``counts``: rows by label)."""
    if callable(sampling_strategy):
        raise ValueError("a callable sampling_strategy takes y, which a DataFrame does not hand over: give a dict")
    sampling_strategy = _named_targets(sampling_strategy, over, classes, [counts[c] for c in classes])
    if not isinstance(sampling_strategy, dict):
        return sampling_strategy
    index = {c: i for i, c in enumerate(classes)}
    unknown = [k for k in sampling_strategy if k not in index]
    if unknown:
        raise ValueError(f"sampling_strategy names classes {unknown} that are not in the DataFrame (classes: {classes})")
    return {index[k]: int(v) for k, v in sampling_strategy.items()}


def _two_valued(df, features):
    """The numeric columns of ``features`` (those the fits read as numbers) holding exactly two
    distinct values in ``df``."""
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    numbers = (T.ByteType, T.ShortType, T.IntegerType, T.LongType, T.FloatType, T.DoubleType)
    types = {f.name: f.dataType for f in df.schema.fields}
    numeric = [c for c in features if isinstance(types[c], numbers)]
    if not numeric:
        return []
    ends = df.agg(*[F.min(c) for c in numeric], *[F.max(c) for c in numeric]).first()
    k = len(numeric)
    pairs = {c: (ends[j], ends[k + j]) for j, c in enumerate(numeric)
             if ends[j] is not None and ends[j] != ends[k + j]}
    if not pairs:
        return []
    others = df.agg(*[F.sum(F.when(F.col(c).isin(lo, hi), 0).otherwise(1)) for c, (lo, hi) in pairs.items()]).first()
    return [c for c, n in zip(pairs, others) if n == 0]


def _fit(df, label, features, grow, counts, seed, fit_rows, binary, settings):
    """For each class in ``grow``: its saved model files and the rows it was fitted from, fitted
    on the executors from a hash-chosen sample of about ``fit_rows`` rows."""
    from pyspark.sql import functions as F

    columns = list(df.columns)  # the closure below must not hold the DataFrame
    rate = F.create_map(*[x for c in grow for x in (F.lit(c), F.lit(min(1.0, fit_rows / counts[c])))])
    hashed = df.withColumn("_smrt_hash", F.pmod(F.xxhash64(F.lit(seed), *[F.col(c) for c in df.columns]),
                                                F.lit(_HASH_RANGE)))
    sample = hashed.where(F.col(label).isin(list(grow))).where(
        F.col("_smrt_hash") < rate[F.col(label)] * F.lit(_HASH_RANGE))

    def fit(pdf):
        import pandas as pd

        # A canonical order: the fit depends on the rows only, not on where they were.
        pdf = pdf.sort_values(["_smrt_hash"] + columns, kind="mergesort").reset_index(drop=True)
        pdf = pdf.drop(columns="_smrt_hash")
        cls = str(pdf[label].iloc[0])
        sampler = SMRT(random_state=seed, **settings).fit_models(pdf[features], pdf[label].astype(str), [cls],
                                                                 binary_columns=binary)
        with tempfile.TemporaryDirectory() as directory:
            sampler.save_models(directory)
            files = {}
            for name in sorted(os.listdir(directory)):
                with open(os.path.join(directory, name), "rb") as f:
                    files[name] = f.read()
        return pd.DataFrame({"cls": [cls], "model": [pickle.dumps((files, pdf))]})

    rows = sample.groupBy(label).applyInPandas(fit, "cls string, model binary").collect()
    return {row["cls"]: pickle.loads(row["model"]) for row in rows}


_CACHE = {}


def _materialised(models, cls):
    """The model directory of class ``cls`` on this executor (written once per process) and the
    rows it was fitted from."""
    files, sample = models[cls]
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(name.encode())
        digest.update(files[name])
    key = digest.hexdigest()  # the same files, the same directory
    if key not in _CACHE:
        directory = tempfile.mkdtemp(prefix="smrt-spark-")
        for name, data in files.items():
            with open(os.path.join(directory, name), "wb") as f:
                f.write(data)
        _CACHE[key] = directory
    return _CACHE[key], sample


def _typed(pdf, fields):
    """``pdf``'s columns in the Spark types of ``fields``: whole numbers rounded for integer
    columns, category text back to booleans."""
    from pyspark.sql import types as T

    out = pdf.copy()
    for name, kind in fields.items():
        column = out[name]
        if isinstance(kind, (T.IntegerType, T.LongType, T.ShortType, T.ByteType)):
            out[name] = np.rint(column.astype(np.float64)).astype(np.int64)
        elif isinstance(kind, (T.FloatType, T.DoubleType)):
            out[name] = column.astype(np.float64)
        elif isinstance(kind, T.BooleanType):
            out[name] = column.map(lambda v: v if isinstance(v, (bool, np.bool_)) else str(v) == "True")
        elif isinstance(kind, T.StringType):
            out[name] = column.astype(str)
    return out


def _under(df, label, classes, counts, sampling_strategy, seed, row_key, mark):
    """Random under-sampling by row key: each row kept where it is."""
    from pyspark.sql import functions as F

    if row_key is None:
        raise ValueError("random-under on Spark needs row_key: a column with a unique, stable key per row")
    if row_key not in df.columns:
        raise ValueError(f"no column {row_key!r} (columns: {df.columns})")
    plan = _smrt.plan([counts[c] for c in classes], _strategy(sampling_strategy, classes, counts, False), True)
    rates = {str(classes[code]): keep / counts[classes[code]] for code, keep in plan.items()}
    base = df.withColumn(mark, F.lit(0)) if mark else df

    def keep(batches):
        for pdf in batches:
            rate = np.asarray([rates.get(str(v), 1.0) for v in pdf[label]], dtype=np.float64)
            kept = _smrt.keeps([str(v) for v in pdf[row_key]], rate, seed)
            yield pdf[kept]

    return base.mapInPandas(keep, base.schema)
