"""The stages of a study, in order, and what runs them.

- protocol: run_study, the stages around the study's parent run
- context: RunContext, what the stages of one study run share (its key, labels, run)
- load: validate and load every target
- pretrain: source checkpoints and where a trial's weights come from
- similarity: each target's similarity to the source, measured
- search: per stratum an Optuna study, trials run by Ray Tune
- confirm: each label's best configuration(s) on every seed
- resume: which study run `--resume` continues
- lease: one running driver per study; full-disk detection
"""
