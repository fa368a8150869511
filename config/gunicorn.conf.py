"""gunicorn settings of this home for `learnplat serve`: the packaged defaults
(learnplat/gunicorn_conf.py) as they are. A site changes them in its own home's
config/gunicorn.conf.py; without one, `learnplat serve` uses the packaged module directly."""

from learnplat.gunicorn_conf import *  # noqa: F403
