"""Retry timing shared by every retry loop (workflow steps, outbound calls, the outbox)."""

import random
from datetime import timedelta


def backoff(base_s: float, attempt: int) -> timedelta:
    """Exponential backoff with jitter: ``base_s × 2^(attempt−1)``, times a random 0.5–1.5, so
    retries of many rows that failed together do not all come back at the same instant."""
    return timedelta(seconds=base_s * 2 ** (attempt - 1) * random.uniform(0.5, 1.5))  # noqa: S311  jitter, not crypto
