"""Local OpenMeter's meters (internal): JSONPath, what an event contributes, indexes and queries.

Pure: no HTTP, no store, no clock.
"""
