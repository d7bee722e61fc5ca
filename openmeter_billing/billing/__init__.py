"""Billing workflows: provider events become OpenMeter grants and entitlements, exactly once."""
