"""Detectors: talent likeness (faces, voices, names), registered IP (images, scripts, titles), personal data."""

from .finding import DetectionContext, Detector, Finding, FindingKind

__all__ = ["DetectionContext", "Detector", "Finding", "FindingKind"]
