"""Learnplat as LTI platform: tool registrations, resource link launches and Deep Linking."""
