"""Row- and table-level validation of raw tables: coercion, GX suites, quarantine, report."""

from shoprec.data.validation.errors import DataValidationError

__all__ = ["DataValidationError"]
