"""Differential testing of the conversion (issue 11).

``grammar`` draws small notebooks from the constructs that carry state between cells; ``runner`` runs
each one cell by cell in one namespace (the reference, as Jupyter does) and as the pipeline nbharden
generates from it (static conversion, imported in process), and compares the values.
"""
