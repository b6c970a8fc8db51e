"""The notebooks' side of the package.

    runner.py      `textseg notebooks`: runs notebooks/ 01-07 headless with papermill, chaining their parameters
    helpers.py     what the notebooks call beyond the public API (tables, figures, live training curves)
    playground.py  the ipywidgets prompt playground of notebook 06
"""
