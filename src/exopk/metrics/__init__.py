"""Decision metrics over posterior and prior draws: exposure, targeting, route comparison.

Every metric takes full model parameter sets (a DataArray with a ``parameter`` dim, for example
:meth:`exopk.inference.posterior.LogPosterior.parameter_sets`) and keeps their other dims
(``chain``, ``draw``), so the same call serves posterior and prior draws.
"""

from exopk.metrics.exposure import auc, output_at, peak
from exopk.metrics.intervals import credible_interval, probability_greater
from exopk.metrics.targeting import (TUMOUR_DELIVERY_MEDIAN_PERCENT_ID, direct_transport_percentage,
                                     drug_targeting_efficiency, influx_constant,
                                     pathway_share, targeting_index, tissue_to_blood_ratio)

__all__ = ["TUMOUR_DELIVERY_MEDIAN_PERCENT_ID", "auc", "credible_interval",
           "direct_transport_percentage", "drug_targeting_efficiency", "influx_constant",
           "output_at", "pathway_share", "peak", "probability_greater", "targeting_index",
           "tissue_to_blood_ratio"]
