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
    up.add_argument("--rejected", type=Path, default=None,
                    help="where batches the server will not store are kept with its answer (default: rejected/ "
                         "beside the spool)")
    up.add_argument("--retries", type=int, default=4, help="retries of a batch on network errors, 429 and 5xx")
    up.add_argument("--backoff", type=float, default=0.5,
                    help="backoff factor in seconds: retries wait 0, 2x, 4x, ... this, plus jitter (urllib3 Retry)")
    args = parser.parse_args(argv)
    if not args.url or not args.token:
        parser.error("--url and --token are required (or PERFBOARD_URL and PERFBOARD_TOKEN)")
    if args.retries < 0 or args.backoff < 0:
        parser.error("--retries and --backoff cannot be negative")
    if not 1 <= args.batch <= 1000:
        parser.error("--batch must be between 1 and 1000")

    runs = []
    for path in args.files:
        try:
            runs.extend(read_runs(path))
        except (OSError, ValueError) as exc:
            print(f"perfboard-agent: cannot read {path}: {exc}", file=sys.stderr)
            return 2
    uploader = Uploader(args.url, args.token, args.spool, args.batch, args.retries, args.backoff,
                        rejected_dir=args.rejected)
    report = uploader.upload(runs)
    summary = (f"sent {report.sent} new, {report.duplicates} already stored, {report.drained} from the spool; "
               f"{report.spooled} spooled in {args.spool}; {report.rejected_runs} rejected")
    if any(exc.kept for exc in report.rejected):
        summary += f" (kept in {uploader.rejected_dir})"
    print(summary)
    for exc in report.rejected:
        try:
            detail = json.dumps(json.loads(exc.body), indent=2)
        except ValueError:
            detail = exc.body
        if len(detail) > 2000:
            detail = detail[:2000] + " ..."
        where = f"; the batch is kept in {exc.kept}" if exc.kept else ""
        print(f"rejected {exc.runs} runs ({exc.status}){where}:\n{detail}", file=sys.stderr)
    if report.rejected:
        return 1
    return 3 if report.spooled else 0


if __name__ == "__main__":
    sys.exit(main())
