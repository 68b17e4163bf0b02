"""Message templates, the outbox, providers, tracking and bounce handling."""
