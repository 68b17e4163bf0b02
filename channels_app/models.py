"""Models of the channels_app app; see DESIGN.md for what lands here."""
