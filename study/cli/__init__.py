"""The `study` command.

- commands: `study run | best-freeze | archs | pretrain | validate | ui`; bad input -> exit 2
- validate: `study validate`, every problem of a config (and cluster file)
- cluster_file: cluster launcher file checks
- archs: `study archs`, the architecture table
- ui: `study ui`, the MLflow UI on the study's store
"""
