"""SSE on a real local Redis Cluster: the live mirror (PUBLISH is broadcast to
every node) and ``Last-Event-ID`` replay from the stream. The cases are the
single-node ones; ``redis_url`` points the fixtures at the cluster."""

from __future__ import annotations

import pytest

from .test_sse import (  # noqa: F401  (cases run again here)
    test_filters_type_glob_and_outcome,
    test_last_event_id_replay_seam,
    test_replay_is_bounded_and_says_so,
    test_team_isolation_live,
    test_team_isolation_on_replay,
    test_transient_events_are_not_replayed,
)
from .test_sse_partitions import (  # noqa: F401  (broker.partitions=3 on the cluster)
    test_ids_are_cursors_and_a_resume_replays_every_partition_once,
    test_publishes_during_the_replay_arrive_once_per_partition,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def redis_url(cluster_url: str) -> str:
    return cluster_url
