"""Retry flaky calls with exponential backoff."""

from .call import RetryError, retry_call
from .policy import RetryPolicy

__all__ = ["RetryError", "RetryPolicy", "retry_call"]
