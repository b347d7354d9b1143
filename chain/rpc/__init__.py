"""Ethereum JSON-RPC: the envelope codec, values, methods, work lanes and the HTTP server."""
