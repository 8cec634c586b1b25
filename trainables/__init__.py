"""What runs inside a trial: architectures, weights, data, transfer, training.

Never imports mlflow and never opens a database: trials hand their results to the
driver through Ray.
"""
