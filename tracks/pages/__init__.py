"""HTML pages of the second wave, one module per feature (the first wave's pages are in tracks/views.py)."""
