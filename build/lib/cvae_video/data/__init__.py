"""Data: the LAB4 folder layout, its DataModule, and a synthetic data set in the same layout."""
