"""Readers for the published Earth-observation datasets, one module each (`eokit.datasets.<name>.open`)."""
