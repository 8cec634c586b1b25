"""What a study is asked to do: the YAML schema and how it is read.

- base: the strict section base every schema module shares
- size_buckets: settings per subset size (`training.steps`, `search.confirm_candidates`)
- target: TargetConfig, one target dataset and its sizes
- resources: ResourcesConfig, what a trial takes and how many a node holds
- schema: StudyConfig, the whole study (sections, ranges, allowed names)
- files: a YAML file or an embedded preset (presets/) into a StudyConfig
"""
