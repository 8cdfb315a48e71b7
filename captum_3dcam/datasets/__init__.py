"""Datasets that yield ``(clip, boxes, label)``: synthetic actions, JHMDB, UCF101-24."""
__all__ = []
