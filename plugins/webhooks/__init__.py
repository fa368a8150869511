"""The webhooks plugin: a school's endpoints receive its events in the Standard Webhooks
format (docs/webhooks.md)."""
