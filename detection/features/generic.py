"""Generic profile: every numeric column, robustly scaled."""

from __future__ import annotations

import numpy as np
import pandas as pd

from detection.dataset import Dataset
from detection.features.base import (
    FeatureSet,
    as_float32,
    level_phrase,
    rank_features,
    robust_center_scale,
    trained_metrics,
)


class GenericFeatures:
    """Numeric columns as they are, centred on the median and divided by 1.4826 MAD."""

    def fit(self, dataset: Dataset) -> GenericFeatures:
        self.feature_names_ = list(dataset.metrics.columns)
        stats = [robust_center_scale(dataset.metrics[c].to_numpy()) for c in self.feature_names_]
        self.center_ = np.array([c for c, _ in stats])
        self.scale_ = np.array([s for _, s in stats])
        self.feature_center_ = np.zeros(len(stats))
        self.feature_scale_ = np.ones(len(stats))
        return self

    def fit_transform(self, dataset: Dataset) -> FeatureSet:
        return self.fit(dataset).transform(dataset)

    def level_columns(self, dataset: Dataset, features: FeatureSet | None = None) -> pd.DataFrame:
        return trained_metrics(dataset, self.feature_names_)

    def transform(self, dataset: Dataset) -> FeatureSet:
        values = self.level_columns(dataset).to_numpy(dtype="float64")
        X = as_float32((values - self.center_) / self.scale_)
        return FeatureSet(X=pd.DataFrame(X, index=dataset.frame.index,
                                         columns=self.feature_names_))

    def explain(self, dataset: Dataset, features: FeatureSet, rows: np.ndarray) -> list[str]:
        X = features.X.to_numpy()[rows]
        top = rank_features(X, self.feature_center_, self.feature_scale_, top=2)
        values = self.level_columns(dataset).to_numpy()[rows]
        return [
            "; ".join(
                level_phrase(self.feature_names_[j], values[i, j], self.center_[j], self.scale_[j])
                for j in picks
            )
            for i, picks in enumerate(top)
        ]
