"""Model aliases: the models.yaml registry, the adapter (one call to a model), wire types and parsers."""
