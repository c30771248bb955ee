"""scikit-learn's estimator checks that apply to image estimators.

scikit-learn's checks feed tabular ``(n_samples, n_features)`` arrays. For the
image estimators such an array is one grey image, so the checks about
parameters, cloning, fitting, pickling and bad values still apply and run
here. Checks about tabular semantics (``n_features_in_``, sample order,
classifier targets, integer dtypes, which images reject) do not apply, nor
those that demand scikit-learn's own wording for tabular shape errors.
``skseg.GaussianMixture`` is tabular and runs the full suite in its own tests.
"""

import importlib.util

import pytest
from sklearn.utils import estimator_checks as checks

from skseg.mixture.segmenter import GMMImageSegmenter
from skseg.preprocessing import ColorSpaceTransformer, IntensityScaler

PARAMETER_CHECKS = [
    checks.check_parameters_default_constructible,
    checks.check_no_attributes_set_in_init,
    checks.check_get_params_invariance,
    checks.check_set_params,
    checks.check_estimator_cloneable,
    checks.check_estimator_repr,
    checks.check_do_not_raise_errors_in_init_or_set_params,
]

FIT_CHECKS = [
    checks.check_estimators_fit_returns_self,
    checks.check_fit_idempotent,
    checks.check_dont_overwrite_parameters,
    checks.check_estimators_overwrite_params,
    checks.check_fit_check_is_fitted,
    checks.check_estimators_pickle,
    checks.check_estimators_nan_inf,
    checks.check_estimators_unfitted,
    checks.check_dict_unchanged,
    checks.check_readonly_memmap_input,
    checks.check_f_contiguous_array_estimator,
]

CHEAP_ESTIMATORS = [
    GMMImageSegmenter(k=2, max_iter=20),
    IntensityScaler(),
]


def _torch_estimators():
    if importlib.util.find_spec("torch") is None:
        return []
    from skseg.unet import UNetSegmenter
    from skseg.unsupervised_cnn import UnsupervisedCNNSegmenter

    return [UNetSegmenter(), UnsupervisedCNNSegmenter()]


def _ids(params):
    return [f"{type(est).__name__}-{check.__name__}" for est, check in params]


_PARAM_CASES = [
    (est, check)
    for est in [*CHEAP_ESTIMATORS, ColorSpaceTransformer(), *_torch_estimators()]
    for check in PARAMETER_CHECKS
]
_FIT_CASES = [(est, check) for est in CHEAP_ESTIMATORS for check in FIT_CHECKS]


@pytest.mark.parametrize(("estimator", "check"), _PARAM_CASES, ids=_ids(_PARAM_CASES))
def test_parameter_checks(estimator, check):
    check(type(estimator).__name__, estimator)


@pytest.mark.parametrize(("estimator", "check"), _FIT_CASES, ids=_ids(_FIT_CASES))
def test_fit_checks(estimator, check):
    check(type(estimator).__name__, estimator)
