"""Build and install nfv.

Three source folders install under one import name (see DESIGN.md, Layout):
nfv/ as ``nfv``, elements/ as ``nfv.elements`` and dataplane/ as
``nfv.dataplane``; no bare ``elements`` or ``dataplane`` reaches site-packages.
Subpackages of each are found on disk, so a new one needs no edit here, and
every ``.pyx`` under dataplane/ is compiled as ``nfv.dataplane.<name>``.
"""

from pathlib import Path

import numpy
from Cython.Build import cythonize
from setuptools import Extension, find_packages, setup

HERE = Path(__file__).resolve().parent

# import name -> folder (relative: setuptools refuses absolute package dirs)
ROOTS = {"nfv": "nfv", "nfv.elements": "elements", "nfv.dataplane": "dataplane"}


def packages():
    found = []
    for name, folder in ROOTS.items():
        found.append(name)
        found += [f"{name}.{sub}" for sub in find_packages(where=str(HERE / folder))]
    return found


def cython_package_view():
    """Return an include dir in which dataplane/ appears as nfv/dataplane/.

    Cython finds a module's own .pxd, and resolves ``cimport nfv.dataplane.x``,
    by walking the package path (nfv/dataplane/x.pxd), which package_dir
    remaps and the source tree does not have. A symlink gives it that path.
    """
    view = HERE / "build" / "cython-include"
    (view / "nfv").mkdir(parents=True, exist_ok=True)
    (view / "nfv" / "__init__.py").touch()
    link = view / "nfv" / "dataplane"
    if not link.is_symlink():
        link.symlink_to(Path("..", "..", "..", "dataplane"), target_is_directory=True)
    return str(view.relative_to(HERE))


def extensions():
    exts = []
    for pyx in sorted((HERE / "dataplane").rglob("*.pyx")):
        rel = pyx.relative_to(HERE)
        module = ".".join(("nfv",) + rel.with_suffix("").parts)
        exts.append(
            Extension(
                module,
                [rel.as_posix()],
                # packet_layout.h and friends sit beside the .pyx; numpy's
                # headers are there for modules that cimport numpy.
                include_dirs=["dataplane", numpy.get_include()],
                define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
            )
        )
    return cythonize(
        exts,
        compiler_directives={"language_level": "3"},
        include_path=[cython_package_view()],
        # Generated C goes to build/, not beside the .pyx in the source tree.
        build_dir="build/cython",
    )


setup(
    name="nfv",
    version="0.1.0",
    description="Click-language network functions compiled to one fused "
    "pipeline, run on the host or as a KVM unikernel",
    packages=packages(),
    package_dir=ROOTS,
    # Headers and Cython declarations ship with the package: later Cython
    # modules cimport them and the unikernel build compiles the C runtime.
    package_data={"nfv.dataplane": ["*.h", "*.pxd", "*.pyx", "unikernel/*"]},
    ext_modules=extensions(),
    zip_safe=False,
    python_requires=">=3.11",
    install_requires=[
        "pyyaml",
        "numpy>=1.26",
        "cython>=3.0",  # the host driver is Cython; kept at run time for rebuilds
        "numba>=0.60",  # first release with numpy 2 support
        "scapy>=2.5",
    ],
    extras_require={"test": ["pytest", "hypothesis"]},
    entry_points={"console_scripts": ["nfv = nfv.cli:main"]},
)
