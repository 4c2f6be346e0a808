"""The job system: the night's steps and jobs, the daemon that times them, the run lock that
keeps two of them off one store, and the demo night.

- ``nightly``: steps (sync, scan, report, returns, submit) and jobs, run and recorded;
- ``returns``: :func:`export_school`, the one way a school's returns are made and written
  (``registerwatch export`` and the night's returns steps both use it);
- ``scheduler``: the ``registerwatch run`` daemon;
- ``lock``: the store's work and daemon locks, and :func:`locked_store`;
- ``demo``: ``registerwatch demo``'s night on a generated school.

Nothing here prints or exits; ``registerwatch.cli`` does.
"""
