"""Disaster recovery: the drill that proves a failover or a restore from backups, measured.

``medops dr drill`` builds a throw-away installation on PostgreSQL clusters of its own (a
primary and a streaming standby, or a primary and its backups), runs prediction load through
real ``medops server`` processes, loses the primary and recovers, and reports the RPO
(acknowledged predictions lost) and the RTO (seconds until predictions succeed again).
"""
