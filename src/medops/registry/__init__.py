"""Model registry: models, versions, signatures, validation reports, cards, approvals."""
