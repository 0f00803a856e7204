"""Settings for the real beats of tests/faults/test_two_real_beats.py: the project's, with a
short schedule (seconds instead of minutes) so a test sees several periods."""

from datetime import timedelta

from config.settings import *  # noqa: F403
from config.settings import CELERY_BEAT_SCHEDULE as _PRODUCTION, os

NOTES = os.environ.get("BEAT_TEST_NOTES", "/dev/null")
CELERY_BEAT_SCHEDULE = {
    "sweep-sla-clocks": _PRODUCTION["sweep-sla-clocks"],  # every second, as shipped
    "beat-heartbeat": {**_PRODUCTION["beat-heartbeat"], "schedule": timedelta(seconds=2)},
    "note-every-second": {"task": "tests.faults.note", "schedule": timedelta(seconds=1), "args": (NOTES, "every-second")},
    "note-every-3-seconds": {"task": "tests.faults.note", "schedule": timedelta(seconds=3), "args": (NOTES, "every-3-seconds")},
}
