# One image for every pipeline process; docker-compose.yml picks the command.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY pipeline ./pipeline
COPY initialize.py predictor.py trainer.py sample_app.py ./
RUN pip install --no-cache-dir .
ENV PIPELINE_DATA_DIR=/data/adult PYTHONUNBUFFERED=1
ENTRYPOINT ["python"]
