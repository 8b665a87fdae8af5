"""perfboard-agent upload FILE.json|FILE.jsonl ... --url URL --token TOKEN"""
import argparse
import json
import os
import sys
from pathlib import Path

from .client import Uploader, read_runs

DEFAULT_SPOOL = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "perfboard-agent" / "spool"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="perfboard-agent", description="Upload benchmark runs to Perfboard.")
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("upload", help="upload runs; what cannot be sent now is spooled and sent first next time")
    up.add_argument("files", nargs="*", type=Path, help=".json (a run, a list or {\"runs\": [...]}) or .jsonl")
    up.add_argument("--url", default=os.environ.get("PERFBOARD_URL"), help="server, e.g. http://perfboard:8000")
    up.add_argument("--token", default=os.environ.get("PERFBOARD_TOKEN"), help="runner token (or PERFBOARD_TOKEN)")
    up.add_argument("--spool", type=Path, default=Path(os.environ.get("PERFBOARD_SPOOL", DEFAULT_SPOOL)))
    up.add_argument("--batch", type=int, default=500, help="runs per request (at most 1000)")
    up.add_argument("--retries", type=int, default=4)
    up.add_argument("--backoff", type=float, default=0.5, help="first retry delay in seconds, doubled each time")
    args = parser.parse_args(argv)
    if not args.url or not args.token:
        parser.error("--url and --token are required (or PERFBOARD_URL and PERFBOARD_TOKEN)")
    if not 1 <= args.batch <= 1000:
        parser.error("--batch must be between 1 and 1000")

    runs = []
    for path in args.files:
        try:
            runs.extend(read_runs(path))
        except (OSError, ValueError) as exc:
            print(f"perfboard-agent: cannot read {path}: {exc}", file=sys.stderr)
            return 2
    uploader = Uploader(args.url, args.token, args.spool, args.batch, args.retries, args.backoff)
    report = uploader.upload(runs)
    print(f"sent {report.sent} new, {report.duplicates} already stored, {report.drained} from the spool; "
          f"{report.spooled} spooled in {args.spool}")
    for exc in report.rejected:
        try:
            detail = json.dumps(json.loads(exc.body), indent=2)
        except ValueError:
            detail = exc.body
        print(f"rejected ({exc.status}):\n{detail}", file=sys.stderr)
    if report.rejected:
        return 1
    return 3 if report.spooled else 0


if __name__ == "__main__":
    sys.exit(main())
