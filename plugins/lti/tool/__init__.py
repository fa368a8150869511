"""Learnplat as LTI tool: platform registrations, launches into learnplat and Deep Linking
responses."""
