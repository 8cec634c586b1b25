"""Define-by-run Optuna search spaces. Constants and suggest calls only: no torch work."""
