"""The answer of a study: read back, compared, tabled, drawn and described.

- model: the answer, typed (Answer, SizeResult, Entry, ...) and its JSON
- query: the answer from a study run's confirm trials
- paired: paired comparisons over the same seeds' subsets
- similarity: each target's similarity to the source, read back for the answer
- report: the answer's tables and files, logged to the study run
- plots: the answer's pictures
- descriptions: what the MLflow UI says (the question, the answer in Markdown)
"""
