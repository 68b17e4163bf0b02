"""Console pages of the compliance app (registered on the console admin site)."""
