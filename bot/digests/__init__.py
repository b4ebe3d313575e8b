"""Managers' digests: figures against the previous period, their text, a chart, CSV exports."""
