"""Recording what is seen: the callback probe, the probe log, the checks' readings, the
migration's view, the metrics."""
