"""Decision metrics over posterior and prior draws: exposure, targeting, route comparison.

Every metric takes full model parameter sets (a DataArray with a ``parameter`` dim, for example
:meth:`exopk.inference.posterior.LogPosterior.parameter_sets`) and keeps their other dims
(``chain``, ``draw``), so the same call serves posterior and prior draws. The names are imported on first use.
"""

from exopk._lazy import lazy_exports

_LAZY = {
    "auc": "exopk.metrics.exposure", "output_at": "exopk.metrics.exposure",
    "peak": "exopk.metrics.exposure",
    "credible_interval": "exopk.metrics.intervals",
    "probability_greater": "exopk.metrics.intervals",
    **{name: "exopk.metrics.targeting" for name in (
        "TUMOUR_DELIVERY_MEDIAN_PERCENT_ID", "direct_transport_percentage",
        "drug_targeting_efficiency", "influx_constant", "pathway_share", "targeting_index",
        "tissue_to_blood_ratio")},
}
__getattr__, __dir__ = lazy_exports(__name__, _LAZY)

__all__ = ["TUMOUR_DELIVERY_MEDIAN_PERCENT_ID", "auc", "credible_interval",
           "direct_transport_percentage", "drug_targeting_efficiency", "influx_constant",
           "output_at", "pathway_share", "peak", "probability_greater", "targeting_index",
           "tissue_to_blood_ratio"]
