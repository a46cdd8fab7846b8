"""exopk: pharmacokinetic biodistribution modelling of extracellular vesicles.

The public names below are imported on first use, so that ``import exopk`` and the ``exopk``
command start quickly.
"""

from exopk._lazy import lazy_exports

_LAZY = {
    "__version__": "exopk._version",
    "Dose": "exopk.dosing",
    "Regimen": "exopk.dosing",
    "simulate": "exopk.engine",
    "Model": "exopk.model",
    "load_model": "exopk.model",
    "available_models": "exopk.models_library",
    "model_path": "exopk.models_library",
}
__getattr__, __dir__ = lazy_exports(__name__, _LAZY)


def fit(fit_file, **options):
    """Run a fit file; see :func:`exopk.inference.fit.fit`.

    Examples
    --------
    The options are checked before any work starts:

    >>> import exopk
    >>> exopk.fit("fits/mouse_iv_mps.toml", chains=0)
    Traceback (most recent call last):
    ...
    exopk.errors.ExopkError: argument chains = 0: must be an integer >= 2, got 0

    ``exopk.fit("fits/mouse_iv_mps.toml", out="fits/mouse_iv_mps.nc")`` wrote the shipped
    result (a short fit that runs is in :func:`exopk.inference.fit.fit`); its diagnostics:

    >>> diagnostics = exopk.load_fit("fits/mouse_iv_mps.nc")["diagnostics"]
    >>> round(float(diagnostics["max_rhat"]), 3), bool(diagnostics["converged"])
    (1.002, True)
    """
    from exopk.inference.fit import fit as run
    return run(fit_file, **options)


def fit_observations(model, observations, **options):
    """Fit a model object to time-course observations; see
    :func:`exopk.inference.own_data.fit_observations` (whose example runs a fit).

    Examples
    --------
    Every measured output needs a residual error model; a missing one is named before any
    work starts:

    >>> import exopk
    >>> from exopk.observation import Observation, Request
    >>> model = exopk.load_model(exopk.model_path("m0_one_compartment"))
    >>> observed = Observation("demo", 0, Request("value", "plasma_concentration", 10.0), "iv",
    ...                        "", value=13.5, upper=float("nan"), censoring="none",
    ...                        sigma_log=0.0, regimen=exopk.Regimen.bolus("iv", 100.0))
    >>> exopk.fit_observations(model, [observed], errors={"plasma_percent_id": "proportional"})
    Traceback (most recent call last):
    ...
    exopk.errors.ExopkError: observations of plasma_concentration have no error model; give one per measured output
    """
    from exopk.inference.own_data import fit_observations as run
    return run(model, observations, **options)


def load_fit(path):
    """Read a fit result; see :func:`exopk.inference.result.load_fit`.

    Examples
    --------
    The shipped result of the main fit (paths relative to the repository root):

    >>> import exopk
    >>> tree = exopk.load_fit("fits/mouse_iv_mps.nc")
    >>> tree["posterior"].sizes["chain"], tree["posterior"].sizes["draw"]
    (4, 1000)
    >>> round(float(tree["posterior"]["tau"].median()), 2)     # README: tau 1.08
    1.08
    """
    from exopk.inference.result import load_fit as load
    return load(path)


__all__ = ["Dose", "Model", "Regimen", "available_models", "fit", "fit_observations", "load_fit",
           "load_model", "model_path", "simulate", "__version__"]
