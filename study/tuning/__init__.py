"""Ray Tune and Optuna: where and how trials run.

- runtime: which Ray cluster the driver uses; whether a trial fits a node
- tuner: the Tuners of the search and confirm phases
- searcher: one Optuna study per stratum behind one Ray searcher
- scheduler: one ASHA per stratum
- progress: the terminal while a phase runs
"""
