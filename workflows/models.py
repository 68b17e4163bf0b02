"""Models of the workflows app; see DESIGN.md for what lands here."""
