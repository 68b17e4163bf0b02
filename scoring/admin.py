"""Console pages of the scoring app (registered on the console admin site)."""
