"""Delivery of messages to a school's other systems (webhook endpoints, a learning record
store): the engine (engine.py), the HTTP client that refuses private addresses
(safe_http.py) and the types a sink and the engine exchange (sink.py)."""
