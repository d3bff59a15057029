"""Reference solutions on grids: spectral / finite-difference solvers (diffrax, Newton) and an on-disk cache.

Each solver returns a :class:`Reference` (axes, values, output names) in float64; ``cached_reference`` stores
results under :func:`cache_dir` (``$PINNKIT_CACHE_DIR`` or ``~/.cache/pinnkit/references``).
"""

from pinnkit.reference.allen_cahn import solve_allen_cahn
from pinnkit.reference.base import Reference
from pinnkit.reference.burgers import burgers_cole_hopf, solve_burgers
from pinnkit.reference.cache import cache_dir, cached_reference
from pinnkit.reference.cavity import solve_cavity

__all__ = [
    "Reference",
    "burgers_cole_hopf",
    "cache_dir",
    "cached_reference",
    "solve_allen_cahn",
    "solve_burgers",
    "solve_cavity",
]
