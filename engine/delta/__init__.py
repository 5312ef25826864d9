"""The Delta Lake log of a scope directory (see ``engine.delta.log``)."""

from engine.delta.log import DeltaFile, DeltaLog, DeltaState, delta_schema

__all__ = ["DeltaFile", "DeltaLog", "DeltaState", "delta_schema"]
