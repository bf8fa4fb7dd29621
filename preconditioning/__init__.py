"""Preconditioned diffusion sampling (PDS): filters (Eq. 20-22) and the operator M (Eq. 19, 23-24)."""
from preconditioning.filters import FilterError, load_statistic, normalised_inverse, radial_filter  # noqa: F401
from preconditioning.operator import Identity, Preconditioner, from_config  # noqa: F401
