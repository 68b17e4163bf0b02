"""Console pages of the workflows app (registered on the console admin site)."""
