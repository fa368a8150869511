"""Serve Ralph's LRS (file-system backend) on 127.0.0.1:PORT; run by the Python of Ralph's own
environment (xapihelpers.start_ralph), never imported by the tests.

Why not `ralph runserver`: it runs uvicorn with reload=True (a file watcher and a child
process, for development), and Ralph 5.1's file-system LRS backend writes with the CREATE
operation, which refuses to write to its statements file once it exists: every POST after
the first answered 500. The LRS is otherwise Ralph's own app (ralph.api:app) with its
validation, duplicate handling and Basic authentication; only the file is appended to."""

import sys

import uvicorn
from ralph.backends.data.base import BaseOperationType
from ralph.backends.lrs.fs import FSLRSBackend

FSLRSBackend.default_operation_type = BaseOperationType.APPEND

if __name__ == "__main__":
    uvicorn.run("ralph.api:app", host="127.0.0.1", port=int(sys.argv[1]), log_level="info")
