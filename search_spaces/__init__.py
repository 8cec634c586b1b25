"""Define-by-run Optuna search spaces and the strategy registry. Constants, suggest calls
and pure functions only: no torch work."""
