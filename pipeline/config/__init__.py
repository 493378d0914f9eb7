"""Settings: one typed, frozen object from flags and `PIPELINE_*` variables, and logging.

Built once in each entry script's `main` and passed down; it knows Kafka's and MLflow's setting
names but imports neither.
"""
