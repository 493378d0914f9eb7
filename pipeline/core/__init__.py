"""The pure core: event schema and validation, features, scoring, batching, datasets, tuning,
training, model checks, message contracts. It takes and returns plain values (bytes, events,
arrays, models) and imports neither Kafka nor MLflow, so all of it is unit-testable without a
broker or a registry (`make lint` checks that with import-linter).
"""
