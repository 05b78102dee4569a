"""``transcell up`` whose compute hosts and conductor reach the image service only over
HTTP: run as ``python http_image_cloud.py up --state-dir DIR --port PORT``.

Once the cloud serves, ``services.image`` (what hosts and the conductor call) becomes
an ``HTTPImageClient`` on the cloud's own Image API URL with an admin session, and
every chunk-protocol request is logged to ``DIR/chunk-requests.log`` so a test can
see which bytes went over the wire.
"""

from __future__ import annotations

import os
import sys
import threading

from keystoneauth1 import session as ks_session
from keystoneauth1.identity import v3

from transcell import cloud as cloudmod
from transcell.cli.main import main
from transcell.image.http_client import HTTPImageClient
from transcell.registry import services

LOG_NAME = "chunk-requests.log"
_serve = cloudmod.EmbeddedCloud.serve
_wsgi_app = cloudmod.EmbeddedCloud.wsgi_app


def wsgi_app(self):
    app = _wsgi_app(self)
    log = open(os.path.join(self.state_dir, LOG_NAME), "a", buffering=1)  # noqa: SIM115
    lock = threading.Lock()

    def logged(environ, start_response):
        path = environ.get("PATH_INFO", "")
        if "/chunk" in path or "/spool/" in path:
            with lock:
                log.write(f"{environ['REQUEST_METHOD']} {path}\n")
        return app(environ, start_response)

    return logged


def serve(self):
    _serve(self)
    auth = v3.Password(auth_url=f"{self.base_url}/identity/v3", username="admin",
                       password=self.identity.user_by_name("admin").password,
                       project_name="admin", user_domain_name="Default",
                       project_domain_name="Default")
    services.image = HTTPImageClient(ks_session.Session(auth=auth), f"{self.base_url}/image")


cloudmod.EmbeddedCloud.wsgi_app = wsgi_app
cloudmod.EmbeddedCloud.serve = serve

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
