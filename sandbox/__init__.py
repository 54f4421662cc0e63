"""qwqrl.sandbox: the code-execution service for code rewards (see docs/sandbox.md).

Importable without torch: the service runs on CPU machines that have none.
"""
