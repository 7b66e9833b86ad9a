"""Continuous training under a change-control plan: plans signed like versions, training
runs, triggers, challenger against champion, and the rollout a plan allows
(docs/retraining.md)."""
