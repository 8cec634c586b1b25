"""MLflow: how a study and its trials are written and read back.

- names: every tag, param, metric and experiment name the service writes or reads
- client: every read and write of the store that is not a trial's
- trial_logger: the Ray callback that mirrors each trial into an MLflow child run
- dataset_inputs: each trial's training subset as an MLflow dataset input
"""
