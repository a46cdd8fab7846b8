"""Sphinx configuration of the exopk documentation.

Build (from the repository root, with ``pip install '.[docs]'``)::

    python -m sphinx -W --keep-going -b html docs docs/_build/html

Pages are MyST Markdown. Tutorials are text notebooks (``file_format: mystnb``) that myst-nb
executes on every build, from the repository root, writing only into temporary folders; nothing
is cached. The API reference is generated from the numpydoc docstrings of the installed
``exopk`` package.
"""

import exopk

project = "exopk"
author = "exopk developers"
copyright = "exopk developers"
version = release = exopk.__version__

extensions = [
    "myst_nb",                      # MyST Markdown pages and executed text notebooks
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "numpydoc",
    "sphinx.ext.mathjax",
]

source_suffix = {".md": "myst-nb", ".rst": "restructuredtext"}
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]
root_doc = "index"

# MyST
myst_enable_extensions = ["colon_fence", "dollarmath", "deflist"]
myst_heading_anchors = 3

# myst-nb: execute every tutorial on every build; no jupyter-cache, so nothing is stored.
nb_execution_mode = "force"
nb_execution_timeout = 300          # per cell, seconds; each tutorial takes well under a minute
nb_execution_raise_on_error = True  # a failing tutorial fails the build
nb_execution_show_tb = True
nb_merge_streams = True

# autodoc / autosummary: the API pages list modules and objects by hand, so autosummary makes
# tables only (no generated stub files in the source folder).
autosummary_generate = False
autodoc_member_order = "bysource"
autodoc_typehints = "none"          # types are written in the numpydoc sections
autodoc_default_options = {"members": True, "show-inheritance": False}

# numpydoc
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False

# No network: intersphinx is not used.
html_theme = "alabaster"
html_theme_options = {"description": "EV pharmacokinetics with honest uncertainty",
                      "page_width": "1100px", "sidebar_width": "240px"}
html_static_path = []
html_title = f"exopk {release}"


def _module_sections_as_rubrics(app, what, name, obj, options, lines):
    """numpydoc formats the sections of functions and classes; in a module docstring a numpydoc
    heading (``Examples`` underlined with ``-``) would be a document section, and two modules on
    one page would give two sections of the same name. Show them as rubrics instead."""
    if what != "module":
        return
    i = 0
    while i < len(lines) - 1:
        title, rule = lines[i].strip(), lines[i + 1].strip()
        if title and rule and set(rule) == {"-"} and len(rule) >= len(title) \
                and not lines[i].startswith(" "):
            lines[i:i + 2] = [f".. rubric:: {title}", ""]
        i += 1


def setup(app):
    app.connect("autodoc-process-docstring", _module_sections_as_rubrics, priority=600)
