"""The notifications plugin: a notification centre per user, notifications from other plugins'
events, real-time delivery over a WebSocket and email (immediate or daily digest)."""
