"""Long work as subprocesses: ``python -m studio.jobs <kind> <spec.json>``.

A job prints one JSON event per line on stdout and keeps its record in the store. The parent
(CLI or GUI) uses :class:`studio.jobs.runner.JobRunner` to start it and read the events.
"""
