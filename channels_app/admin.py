"""Console pages of the channels_app app (registered on the console admin site)."""
