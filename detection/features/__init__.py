"""Feature engineering per profile: each featurizer learns at fit and transforms any file."""

from __future__ import annotations

from detection.features.base import FeatureSet, Featurizer
from detection.features.generic import GenericFeatures
from detection.features.login import LoginFeatures
from detection.features.sensor import SensorFeatures

FEATURIZERS: dict[str, type[Featurizer]] = {
    "sensor": SensorFeatures,
    "login": LoginFeatures,
    "generic": GenericFeatures,
}

__all__ = ["FEATURIZERS", "FeatureSet", "Featurizer", "GenericFeatures", "LoginFeatures",
           "SensorFeatures"]
