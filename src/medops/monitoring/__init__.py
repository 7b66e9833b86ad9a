"""Monitoring: drift statistics between a stored reference profile and live data."""
