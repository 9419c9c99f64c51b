"""CloudWatch Logs Insights queries (the CWLI language): parsed into commands, run over a
stream of log records. Pure: the Logs service hands it events and stores what it answers."""
