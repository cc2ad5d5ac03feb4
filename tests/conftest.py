import os
import sys

from hypothesis import HealthCheck, settings

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRACES = os.path.join(ROOT, "traces")

# The README's test command runs the short profile (the whole suite within 90 s of
# CPU); .ci/run's second step runs the property and fuzz tests again with "long".
PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "default")
LONG = PROFILE == "long"
settings.register_profile("default", deadline=None, max_examples=15,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("long", deadline=None, max_examples=500,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(PROFILE)

#: The ptviz command as a user runs it. ``-P``: not from the current directory, so a
#: subprocess runs the installed package, as the tests do.
PTVIZ = [sys.executable, "-P", "-m", "ptviz"]

# For ``tests.*`` helpers only: appended, so ``ptviz`` and ``replayer`` come from the
# installed package (tests/test_readme.py checks), and packaging mistakes show.
if ROOT not in sys.path:
    sys.path.append(ROOT)


def pytest_pyfunc_call(pyfuncitem):
    """Run ``async def`` tests (the UI's pilot tests) in a fresh event loop: all they need
    from an asyncio plugin."""
    import asyncio
    import inspect
    if inspect.iscoroutinefunction(pyfuncitem.obj):
        args = {name: pyfuncitem.funcargs[name]
                for name in pyfuncitem._fixtureinfo.argnames}
        asyncio.run(pyfuncitem.obj(**args))
        return True
    return None
