"""The vetoable action the identity plugin asks about (it records no events yet; its audit
log keeps account history)."""

from __future__ import annotations

from learnplat.plugin import Action

REGISTER = Action("user.register", "Someone registers an account (self-service)", ("email",))
ACTIONS = [REGISTER]
