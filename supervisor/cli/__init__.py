"""The command lines: ``superd`` (the daemon and its helpers) and ``superctl``
(talks to a running superd, including its interactive shell)."""
