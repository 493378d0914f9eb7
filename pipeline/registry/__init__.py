"""The MLflow side: tracking, the registered model's pyfunc face, the tracked training job.

It knows nothing of Kafka or of the services built on it.
"""
