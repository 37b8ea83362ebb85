"""How the checks count rows of the app's tables without holding them long: exact counts on small
tables and block samples on large ones (estimates), the drift sweep a few slices a run (sweep),
and the NULL-per-column SQL (nulls). Helpers of checks/, which holds one file per check."""
