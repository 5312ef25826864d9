"""Kalam for Jupyter: the ``%%kalam`` IPython magic.

``%load_ext kalam_magic`` registers ``%kalam`` / ``%%kalam``, the ``Kalam``
settings (``%config Kalam``) and tab completion; ``%unload_ext kalam_magic``
removes all three and closes the engines the magic opened.
"""

from __future__ import annotations

from typing import Any

from kalam_magic.config import Kalam
from kalam_magic.errors import KalamCellError
from kalam_magic.result import CellResult

__all__ = [
    "CellResult",
    "Kalam",
    "KalamCellError",
    "load_ipython_extension",
    "unload_ipython_extension",
]


def load_ipython_extension(ip: Any) -> None:
    from kalam_magic.completion import make_matcher
    from kalam_magic.magic import KalamMagics

    if isinstance(ip.magics_manager.registry.get("KalamMagics"), KalamMagics):
        # Already registered (the Kalam kernel loads it at start-up): a
        # notebook's own %load_ext is then a silent no-op, never a second copy.
        return
    settings = Kalam(parent=ip)
    magics = KalamMagics(ip, settings)
    ip.register_magics(magics)
    ip.configurables.append(settings)
    magics.matcher = make_matcher(magics.catalog)
    ip.Completer.custom_matchers.append(magics.matcher)


def unload_ipython_extension(ip: Any) -> None:
    magics = ip.magics_manager.registry.pop("KalamMagics", None)
    if magics is None:
        return
    for kind in ("line", "cell"):
        ip.magics_manager.magics[kind].pop("kalam", None)
    if magics.settings in ip.configurables:
        ip.configurables.remove(magics.settings)
    if magics.matcher in ip.Completer.custom_matchers:
        ip.Completer.custom_matchers.remove(magics.matcher)
    magics.engines.close_all()
    if getattr(magics, "remote", None) is not None:  # a --connect grpc:// / http:// server
        magics.remote.close()
