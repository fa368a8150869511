"""gunicorn as `learnplat serve` runs it: ``python -P -m learnplat.cli.gunicorn_main ARGS``.

Stock gunicorn puts its working directory first on sys.path twice over: ``python -m gunicorn``
prepends the current directory, and gunicorn's ``chdir`` setting (default: the current
directory) is inserted again before the configuration and the app are imported. Started from
the directory that holds a checkout named ``learnplat/``, that folder then shadows the installed
package ("cannot import name 'PluginInfo' from 'learnplat.plugins' (unknown location)").
``-P`` (Python 3.11+, also ``PYTHONSAFEPATH``) keeps the current directory off sys.path, and
this application changes directory without touching sys.path, so what is imported never depends
on where the server was started.
"""

from __future__ import annotations

import os

from gunicorn.app.wsgiapp import WSGIApplication


class LearnplatGunicorn(WSGIApplication):
    def chdir(self) -> None:
        # gunicorn's own chdir() also does sys.path.insert(0, cfg.chdir): the shadowing above.
        os.chdir(self.cfg.chdir)


def main() -> None:
    LearnplatGunicorn("%(prog)s [OPTIONS] [APP_MODULE]", prog="gunicorn").run()


if __name__ == "__main__":
    main()
