"""The targets ``bench/compare.py`` puts side by side, one module each kind.

* :mod:`peers.common`: what every target shares: ports, CPU pinning, a process's CPU and memory
  from ``/proc``, the generator processes and their contract, percentiles, and the
  :class:`~peers.common.Target` interface.
* :mod:`peers.relays`: (a) a raw aiohttp websocket relay, (b) the bare python-socketio relay of
  ``bench/load.py``.
* :mod:`peers.bridge`: (c) the bridge on SQLite, (d) on PostgreSQL, (f) two nodes over Redis.
* :mod:`peers.synapse` (another module's owner): (e) Matrix Synapse. ``compare.py`` imports it if it
  is there and calls its ``make_target(options)``, which returns a :class:`~peers.common.Target`.

The load comes from generator processes (``bench/generators/``), one JSON config file each; what a
generator is given and what it prints is in :mod:`peers.common`'s docstring.
"""
