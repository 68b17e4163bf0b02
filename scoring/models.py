"""Models of the scoring app; see DESIGN.md for what lands here."""
