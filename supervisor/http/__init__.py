"""superd's optional HTTP listener (``[http]``): supervisord's XML-RPC
interface at ``/RPC2`` and its ``/logtail`` streams, Prometheus metrics at
``/metrics`` and a dashboard at ``/`` with its JSON API under ``/api/``.

Nothing here is imported unless the config has an ``[http]`` table: superd
without it keeps its memory and start-up time. :mod:`.server` is the
transport (h11, authentication, limits), :mod:`.streaming` the answers
produced over time (chunks, Server-Sent Events), :mod:`.xmlrpc` decodes
calls and encodes answers and faults, :mod:`.rpcinterface` maps
supervisord's methods onto the command API (with :mod:`.rpcinfo`,
:mod:`.rpcprocesses`, :mod:`.rpclogs` and :mod:`.rpcsystem`), :mod:`.logtail` serves
supervisord's ``tail -f`` URLs, :mod:`.api` the dashboard's JSON API and
:mod:`.dashboard` its page, :mod:`.metrics` writes the Prometheus text and
:mod:`.stats` counts what the metrics and the process info need.
"""
