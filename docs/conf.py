"""Sphinx configuration for fastml's pages: user guide, API reference and gallery.

Build: ``pip install ".[docs]" && sphinx-build -W --keep-going docs docs/_build/html``.
The version comes from the installed package, whose ``_build_config`` is written by
meson from ``project(version: ...)`` in meson.build: the one place it is set.
"""

import os
import pathlib
import sys
import warnings

import matplotlib

import fastml

matplotlib.use("Agg")
HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "_ext"))

project = "fastml"
author = "fastml developers"
copyright = "fastml developers, BSD-3-Clause"
release = fastml.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
    "bench_tables",
]

templates_path = ["_templates"]
exclude_patterns = ["_build", "examples/README.rst", "sg_execution_times.rst"]
root_doc = "index"

# API reference: a page per public name, listed by hand in api/*.rst (a test checks the
# lists against each module's __all__); classes show their own and inherited members.
autosummary_generate = True
autodoc_default_options = {}
autodoc_typehints = "none"  # numpydoc's Parameters section already states the types
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False
numpydoc_validation_checks = set()

sphinx_gallery_conf = {
    "examples_dirs": "examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "within_subsection_order": "FileNameSortKey",
    "download_all_examples": False,
    "remove_config_comments": True,
    "show_memory": False,
    # Each example must finish in well under 30 s (the floor); a slower one is an
    # error, not a quiet regression of the docs build time.
    "abort_on_example_error": True,
    "image_scrapers": ("matplotlib",),
    "matplotlib_animations": False,
    "min_reported_time": 1,
    "capture_repr": (),
}

html_theme = "pydata_sphinx_theme"
html_title = f"fastml {release}"
html_theme_options = {
    "navbar_align": "left",
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc"],
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
}
html_sidebars = {"index": [], "benchmarks": [], "changelog": []}
html_show_sourcelink = False

# MathJax from its CDN for readers on the web; a local copy when FASTML_MATHJAX_PATH names
# one (an offline check of the pages in a browser).
if os.environ.get("FASTML_MATHJAX_PATH"):
    mathjax_path = os.environ["FASTML_MATHJAX_PATH"]

# Examples print no "non-GUI backend" warnings under Agg.
warnings.filterwarnings("ignore", message="Matplotlib is currently using agg")
