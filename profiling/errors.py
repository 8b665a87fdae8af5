"""Exception types shared by the profiling modules."""


class ModelInputError(ValueError):
    """A user-supplied file cannot be used; the message is meant for the user."""


class PackageError(ModelInputError):
    """A Core ML model (package, zip or .mlmodel) cannot be read."""


class UploadRejected(ModelInputError):
    """An upload was refused (corrupt, hostile or of the wrong type)."""


class ConversionError(Exception):
    """A conversion/compression stage failed.

    Carries the stage name and coremltools' (or torch's) own message, not a traceback,
    so a job can store and show it as is.
    """

    def __init__(self, stage: str, message: str):
        self.stage = stage
        self.message = message
        super().__init__(f"{stage}: {message}")

    def as_dict(self) -> dict:
        return {"stage": self.stage, "message": self.message}
