"""Demo history for predictive scoring (placeholder until the predictive model lands)."""
