#!/usr/bin/env python3
"""20 million synthetic rows through smrt.spark in local[2] (BENCHMARKS.md): run with the venv
that has smrt[spark]; reads /tmp/m1.csv (1,000,000 x 20 features, label column "label"). Prints the times and the Python driver's peak memory; sample the JVM's
with ps while it runs."""
import os, sys, time, resource
os.environ["PYSPARK_PYTHON"] = sys.executable
from pyspark.sql import SparkSession
from smrt.spark import balance
spark = (SparkSession.builder.master("local[2]").config("spark.ui.enabled", "false")
         .config("spark.driver.memory", "2g").getOrCreate())
t0 = time.time()
df = spark.read.csv("/tmp/m1.csv", header=True, inferSchema=True)
df = df.cache(); n = df.count()
t1 = time.time()
out = balance(df, "label", sampling_strategy={1: 49715 + 20_000_000, 0: 950285}, random_state=1, fit_rows=20000)
t2 = time.time()
out.write.format("noop").mode("overwrite").save()
t3 = time.time()
made = out.filter("label = 1").count() - 49715
print("synthetic rows", made)
print(f"read+cache {t1-t0:.1f} s; fit (balance call) {t2-t1:.1f} s; generate+write(noop) {t3-t2:.1f} s; total after read {t3-t1:.1f} s")
print("python driver max RSS MB", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
spark.stop()
