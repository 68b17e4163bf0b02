"""Models of the compliance app; see DESIGN.md for what lands here."""
