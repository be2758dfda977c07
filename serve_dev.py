"""The development server (`make run`): threaded, no reloader, no debugger; a quiet exit on
Ctrl-C. Production is gunicorn (`make serve`)."""

from __future__ import annotations

import argparse
import signal
import sys

from werkzeug.serving import run_simple

from app import create_app
from config import load_env_file


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5000)
    args = parser.parse_args()
    load_env_file()
    app = create_app()

    def stop(signum, frame):
        print("\nSparekey stopped.", flush=True)
        sys.exit(0)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    run_simple(args.host, args.port, app, threaded=True, use_reloader=False)


if __name__ == "__main__":
    main()
