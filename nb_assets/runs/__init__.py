"""One notebook run on the host: the pipeline, its record, the history of runs, the guard of tables not its own."""
