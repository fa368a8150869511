"""Learnplat as LTI tool: grades sent back to the launching platform (AGS), through the
delivery engine."""
