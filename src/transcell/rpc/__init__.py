"""The RPC boundary between services.

Callers name a topic and a method and pass JSON-serialisable keyword
arguments; payloads are round-tripped through JSON even in-process, so a
message that would not survive RabbitMQ fails in tests, not in production.
"""
