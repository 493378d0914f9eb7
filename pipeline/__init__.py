"""Real-time LightGBM scoring on Apache Kafka, with background retraining and hot-swap."""

__version__ = "0.1.0"
