"""The control plane: newline-delimited JSON-RPC 2.0 on a Unix socket.

The wire constants (shared by both ends and cheap to import), the socket
transport (peer credentials, limits, time-outs), one handler per method
(checking parameters, calling the daemon's command API, mapping its errors to
codes) and the Python client that superctl and scripts use.
"""
