"""Questions of one page share their reads of the sketch rows (``collector.sketches.shared_reads``)."""
from . import sketches

# Methods that read only: a request that writes must see its own writes in what it reads afterwards.
READING = frozenset({"GET", "HEAD"})


def shared_sketch_reads(get_response):
    def middleware(request):
        if request.method not in READING:
            return get_response(request)
        with sketches.shared_reads():
            return get_response(request)

    return middleware
