"""Build, in a background process, the compiled network functions the session's tests
will ask for, in the order the tests will ask (tests/conftest.py starts it when
collection ends, from the test modules' PREBUILD lists).

    python tests/prebuild.py JOBS.json

A job is {"config": text or path, "target": "host" or "unikernel", "defines": {...}}
and is built exactly as nfv.testing.NF builds it, so the test finds it in nfv's cache.
nfv's build locks make a test that needs a job being built wait for it instead of
compiling it a second time.  A failed job is only logged: the test that needs it
builds it again and reports the error itself.
"""
import json
import sys
import time


def main(jobs_file: str) -> int:
    from nfv.testing import NF

    for job in json.loads(open(jobs_file).read()):
        start = time.perf_counter()
        lines = [l.strip() for l in job["config"].splitlines() if l.strip()]
        name = lines[0][:70] if len(lines) > 1 else job["config"]
        try:
            NF(job["config"], target=job["target"], **job.get("defines", {}))
            status = "built"
        except Exception as e:  # the test reports it properly
            status = f"failed: {type(e).__name__}: {str(e)[:200]}"
        print(f"{time.perf_counter() - start:6.1f} s  {job['target']:9} {name}  {status}",
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
