# One image for every pipeline process and the MLflow server (same MLflow as its clients, with
# psycopg for a PostgreSQL store, and confluent-kafka for --kafka-client confluent-kafka);
# docker-compose.yml and deploy/ pick the command.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY pipeline ./pipeline
COPY initialize.py predictor.py trainer.py sample_app.py ./
COPY specs ./specs
RUN pip install --no-cache-dir ".[postgres,librdkafka]"
ENV PIPELINE_DATA_DIR=/data/adult PYTHONUNBUFFERED=1
ENTRYPOINT ["python"]
