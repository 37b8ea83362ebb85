"""What leaves the process: the redactor every output goes through, the log, values as
messages show them."""
