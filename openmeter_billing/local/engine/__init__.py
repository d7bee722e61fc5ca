"""Local OpenMeter's balance engine (internal): pure functions over grants, resets and usage.

No I/O, no clock, no store: callers hand in plain values and get numbers back.
"""
