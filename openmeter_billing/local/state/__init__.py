"""Local OpenMeter's store (internal): records, the indexes that find them, and id generation.

Knows nothing about HTTP; route handlers change it under the emulator's lock.
"""
