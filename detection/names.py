"""The names a user types: file profiles and detectors.

Kept apart from the code they name so that the command line's ``--help`` lists them
without importing numpy or pandas. :data:`detection.detectors.DETECTORS` maps each
detector name to its class.
"""

# The kinds of file Vigil reads; each has its own columns, features and reasons.
PROFILES = ("sensor", "login", "generic")
DETECTOR_NAMES = ("isolation_forest", "zscore", "robust_zscore")
