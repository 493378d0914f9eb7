"""One root exception so entry scripts can map failures to exit codes in one place."""


class PipelineError(Exception):
    """Root of every error this package raises on purpose."""

    exit_code = 1


class ConfigError(PipelineError):
    """A setting is missing or out of range: the operator must fix the command line."""

    exit_code = 2


class DataError(PipelineError):
    """A data file is absent, malformed or does not match its published checksum."""

    exit_code = 3


class ValidationError(PipelineError):
    """One event is not a valid scoring request; it is data for the dead-letter topic."""

    def __init__(self, reason: str, field: str | None = None) -> None:
        super().__init__(f"{field}: {reason}" if field else reason)
        self.reason = reason
        self.field = field


class InfrastructureError(PipelineError):
    """Kafka, Maven, Java or the model registry is unreachable or failing."""

    exit_code = 4


class BrokerError(InfrastructureError):
    """The Kafka broker cannot be started, reached or used."""


class RegistryError(InfrastructureError):
    """The MLflow tracking server or model registry cannot be used."""


class ModelError(PipelineError):
    """A model failed its checks (schema, golden sample, finite scores) and must not serve."""

    exit_code = 5
