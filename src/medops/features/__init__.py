"""The feature store: entities, feature views and on-demand features defined once in the
registry; point-in-time training sets from the offline store; the latest values served from an
online store at prediction time (docs/features.md)."""
