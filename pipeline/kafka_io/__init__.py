"""The Kafka side: clients, topic admin, the local KRaft broker and its jars, the event reader.

Named `kafka_io`, not `kafka`, so it can never be confused with kafka-python's own package in
an import or a traceback. It knows nothing of MLflow or of the services built on it.
"""
