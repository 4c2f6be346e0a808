"""The job system: the night's steps and jobs, the daemon that times them, the run lock that
keeps two of them off one store, and the demo night.

- ``steps``: the night's steps, one module each (sync, scan, report, returns, submit);
- ``nightly``: jobs (named lists of steps), run and recorded; ``results`` and ``context``;
- ``queue`` and ``tasks``: the night on procrastinate's task queue, for ``registerwatch worker``
  (PostgreSQL stores);
- ``returns``: :func:`export_school`, the one way a school's returns are made and written
  (``registerwatch export`` and the night's returns steps both use it);
- ``scheduler``: the ``registerwatch run`` daemon;
- ``lock``: the store's work and daemon locks, and :func:`locked_store`;
- ``demo``: ``registerwatch demo``'s night on a generated school.

Nothing here prints or exits; ``registerwatch.cli`` does.
"""
