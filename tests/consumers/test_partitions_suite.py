"""The single-node worker cases again with broker.partitions=3.

``make_settings`` is overridden here, so every case runs through the
partitioned readers and the store façades (``consumers.store.partitioned``).
Their events are of team-1, which lives in partition 0, whose keys are the
unpartitioned ones: the cases' own key checks stay true, and what changes is
the machinery around them. The cases that mix teams are in
test_partitions_worker.py. Left out: the 410 case (its operator event, team
``eventbus``, goes to partition 2, where its check does not look; the same
case across partitions is test_partitions_worker.py's) and the read-failure
case (it patches ``Worker.streams.read``, which partitions do not read through).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from eventbus.keys import partition_of
from eventbus.settings import Settings

from .test_worker import (  # noqa: F401  (fixtures and cases run again here)
    setup,
    test_a_failing_template_fails_only_its_own_delivery,
    test_channel_exception_and_timeout_are_retryable,
    test_crash_before_commit_leaves_entry_pending_for_reclaim,
    test_dead_consumers_removed_only_without_pending,
    test_delivered_recorded_and_acked,
    test_delivery_recorded_failed_or_retrying_is_sent_again,
    test_due_retry_of_a_delivery_delivered_meanwhile_is_not_sent,
    test_duplicate_publish_is_sent_once_and_noted,
    test_duplicates_across_two_workers_are_delivered_at_least_once,
    test_entry_waits_for_the_same_delivery_in_flight,
    test_envelope_without_id_keeps_one_delivery_id_across_receives_and_retries,
    test_garbage_entries_dead_lettered_good_ones_delivered,
    test_graceful_stop_finishes_in_flight,
    test_in_flight_is_bounded,
    test_large_commit_is_chunked,
    test_lookup_failure_sends_anyway,
    test_max_receives_boundary,
    test_max_receives_goes_to_dead_letters,
    test_permanent_failure_not_retried,
    test_rate_limited_for_too_long_fails,
    test_rate_limited_is_not_a_failed_attempt,
    test_reclaimed_entry_is_not_resent_after_a_retry_delivered_it,
    test_reclaimed_entry_resends_only_what_was_not_recorded_delivered,
    test_record_is_one_key_with_every_attempt,
    test_restart_drains_own_pending_first,
    test_retries_exhausted_fail,
    test_retry_after_from_the_channel_sets_the_next_attempt,
    test_retry_after_is_clamped_to_retry_after_max,
    test_retry_claim_is_exclusive,
    test_retry_then_delivered_keeps_delivery_id,
    test_safe_trim_keeps_unacked_entries,
    test_stop_past_drain_timeout_leaves_entry_pending,
    test_team_and_outcome_matching,
    test_two_workers_share_the_work_without_double_attempts,
    test_unknown_channel_after_reload_is_a_failed_record,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def make_settings(redis_url: str, prefix: str) -> Callable[..., Settings]:
    assert partition_of("team-1", 3) == 0

    def make(**sections: Any) -> Settings:
        broker = {"redis_url": redis_url, "prefix": prefix, "partitions": 3}
        broker.update(sections.pop("broker", {}))
        return Settings(broker=broker, **sections)

    return make
