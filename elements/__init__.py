"""The nfv element library (import name `nfv.elements`), one module per family.

Importing this package imports every family module (standard, devices, sources,
classify, ip, ethernet, and the others beside them), and each element class
registers itself under its Click name (see `nfv.element.registry`).  Families
are found by listing the package, so a new family module is picked up without
editing this file; modules whose names start with `_` are helpers, not families.
"""
import importlib
import pkgutil

FAMILIES = tuple(sorted(m.name for m in pkgutil.iter_modules(__path__)
                        if not m.name.startswith("_")))

for _family in FAMILIES:
    importlib.import_module(f"{__name__}.{_family}")
