"""Scale-out batch scoring on Ray Data: `emozoo predict MODEL INPUT... --engine ray -o OUT/`.

Ray is an optional extra (`pip install 'emozoo[ray]'`). Nothing in this package imports it at module level,
so `emozoo` works without it; `require_ray` turns its absence into one line saying how to install it.
The engine reuses the single-process path's pieces (input listing, decoding, model loading) so that both
give the same predictions; see docs/ray.md.
"""

from __future__ import annotations

from types import ModuleType

from zoo.errors import EmozooError

INSTALL_HINT = "pip install 'emozoo[ray]'  (or: pip install 'ray[data]>=2.40')"


class RayMissingError(EmozooError):
    """The Ray engine was asked for where the `ray` extra is not installed."""


def require_ray() -> ModuleType:
    """Import ray (with Ray Data), or fail with how to install it."""
    try:
        import ray
        import ray.data  # noqa: F401 - the Data library is a separate part of the wheel's extras
    except ImportError as error:
        raise RayMissingError(f"--engine ray needs Ray Data, not installed here ({error}): {INSTALL_HINT}") from None
    return ray
