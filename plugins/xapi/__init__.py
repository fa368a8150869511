"""The xAPI plugin: a school's learning events as xAPI 1.0.3 statements sent to its learning
record store (docs/xapi.md)."""
