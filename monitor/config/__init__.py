"""The configuration: typed values, the schema, loading (YAML, environment, flags),
durations, names."""
