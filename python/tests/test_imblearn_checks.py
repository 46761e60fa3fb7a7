"""imbalanced-learn's own estimator checks for samplers, run on every smrt sampler.

Checks imbalanced-learn yields only for tags smrt does not claim, and why:
- check_samplers_sparse, check_samplers_pandas_sparse on sparse matrices: smrt takes dense
  arrays and DataFrames only (`sparse` is False; the sparse-DataFrame check runs and passes).
- check_samplers_nan: smrt refuses NaN with a ValueError naming the row and column (`allow_nan`
  is False), where imbalanced-learn's random samplers copy it through.
"""

from imblearn.utils.estimator_checks import parametrize_with_checks

import smrt

FAST = {"epochs": 3, "min_steps": 0, "backend": "cpu"}


@parametrize_with_checks(
    [
        smrt.SMOTE(backend="cpu"),
        smrt.SMOTENC(categorical_features=[0], backend="cpu"),
        smrt.SMOTEN(backend="cpu"),
        smrt.RandomOverSampler(),
        smrt.RandomUnderSampler(),
        smrt.SMRT(**FAST),
    ]
)
def test_imbalanced_learn_checks(estimator, check):
    check(estimator)
