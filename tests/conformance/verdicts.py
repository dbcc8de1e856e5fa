"""The one list of known differences between Headwater and Apache Kafka 4.4.

``DELIBERATE``: Headwater answers differently on purpose; the reason is shown in
docs/conformance.md. ``PENDING``: a difference in the group coordinator, which is being
rewritten (KIP-848) and owned elsewhere; the test expects it to differ until that work fixes
it. ``FIXED``: scenarios that differed until Headwater was changed to agree, with the change.
The test fails when a listed difference disappears, so the lists stay true.
"""

from __future__ import annotations

DELIBERATE: dict[str, str] = {
    "configs.min_insync_replicas": (
        "Kafka 4 (KRaft) records a cluster-wide min.insync.replicas, so a topic's value comes "
        "from DYNAMIC_DEFAULT_BROKER_CONFIG with static and default synonyms behind it (and "
        "KafkaCluster also sets it in server.properties). Headwater is one node: it has no "
        "broker-level min.insync.replicas and reports Kafka's default, 1."
    ),
    "configs.segment_bytes_minimum": (
        "Kafka 4 refuses segment.bytes below 1 MiB (its own tests use an internal config). "
        "Headwater accepts down to 14 bytes, so tests and small deployments can roll segments "
        "after a few records and see retention and compaction work."
    ),
    "configs.extension_configs": (
        "headwater.schema.validation is Headwater's own topic config (broker-side schema "
        "checks, as Confluent Server's confluent.value.schema.validation); Kafka has no such "
        "config. Everything outside the headwater. namespace matches (configs.config_names)."
    ),
    "metadata.auto_create": (
        "Headwater creates an auto-created topic synchronously, so the first Metadata answer "
        "already lists its partition. Kafka asks its controller and answers "
        "UNKNOWN_TOPIC_OR_PARTITION until the new topic reaches the broker; clients retry "
        "either way, and the settled answers agree."
    ),
    "metadata.all_topics_lists_created": (
        "Kafka stores committed offsets in the internal topic __consumer_offsets and lists it "
        "in Metadata. Headwater keeps them in its own durable offsets log, not a topic, so it "
        "lists no internal topics."
    ),
    "metadata.internal_topic": (
        "As metadata.all_topics_lists_created: Headwater has no __consumer_offsets topic, so "
        "Metadata for it answers UNKNOWN_TOPIC_OR_PARTITION."
    ),
}

PENDING: dict[str, str] = {}

FETCH_ERRORS = (
    "Headwater answered a fetch of an unknown partition with a null list of aborted "
    "transactions, and an out-of-range fetch with the partition's offsets; like Kafka it now "
    "answers [] for the former and -1 offsets for the latter."
)

LEADER_EPOCH = (
    "Headwater answered leader epoch 0 where ListOffsets found no offset (an unknown "
    "partition, a timestamp past the last record, an empty partition); like Kafka it now "
    "answers -1."
)

TIMESTAMP_BOUNDS = (
    "Headwater accepted any record timestamp; like Kafka 4 it now refuses a batch with "
    "CreateTime records more than message.timestamp.after.max.ms (1 hour by default) ahead "
    "or message.timestamp.before.max.ms behind its clock: INVALID_TIMESTAMP, every late "
    "record listed in record_errors."
)

SYNONYMS = (
    "Headwater listed each topic config as its own only synonym; like Kafka it now lists the "
    "topic override, then the broker config of Kafka's name for it (log.retention.bytes, "
    "message.max.bytes, ...) with its built-in default where Kafka lists one."
)

OPERATIONS = (
    "Asked for authorised operations, Headwater answered 'unknown' (-2147483648); like Kafka "
    "without an authoriser it now answers every operation of the resource type."
)

FENCED = (
    "A request under an epoch bumped past was INVALID_PRODUCER_EPOCH in every version; like "
    "Kafka (KIP-588) Headwater now answers PRODUCER_FENCED from InitProducerId v4 and "
    "AddPartitionsToTxn, AddOffsetsToTxn and EndTxn v2."
)
NOTHING_OPEN = (
    "EndTxn with no transaction open succeeded; like Kafka it is now INVALID_TXN_STATE, except "
    "that an EndTxn v5 abort bumps the epoch, and the previous epoch asking for the other "
    "outcome (also after a timeout abort) is INVALID_TXN_STATE rather than "
    "INVALID_PRODUCER_EPOCH."
)

GROUP_OPERATIONS = (
    OPERATIONS + " For a group (DescribeGroups v3+, ConsumerGroupDescribe) that is READ, "
    "DELETE, DESCRIBE, DESCRIBE_CONFIGS and ALTER_CONFIGS: 3400."
)

COMMITTED_ONLY = (
    "A group that only holds committed offsets (no member ever joined) was listed with "
    'protocol type "consumer" and described as Dead; like Kafka, which keeps it as an Empty '
    'classic group created by the offset commit, it is now listed with "" and described as '
    "Empty."
)

FIXED: dict[str, str] = {
    "transactions.fenced_raw": FENCED,
    "transactions.fenced_by_version": FENCED,
    "transactions.end_txn_without_transaction": NOTHING_OPEN,
    "transactions.tv2_end_txn": NOTHING_OPEN + " " + FENCED,
    "transactions.tv2_timeout": NOTHING_OPEN,
    "metadata.topic_authorized_operations": OPERATIONS,
    "metadata.describe_cluster_with_operations": OPERATIONS,
    "configs.defaults": SYNONYMS
    + " message.timestamp.after.max.ms now defaults to Kafka 4's 1 hour (and is enforced).",
    "configs.overrides": SYNONYMS,
    "configs.incremental_alter": SYNONYMS,
    "configs.admin_client": SYNONYMS,
    "produce.log_append_time": (
        "Headwater never sent the append time in Produce answers (the field was misnamed), "
        "so a LogAppendTime topic's producers saw -1; it now answers the time it stamped."
    ),
    "transactions.out_of_order_sequence": (
        "A refused sequence was answered with log start offset -1 and a retried batch without "
        "an append time; like Kafka, Headwater now answers the partition's log start offset "
        "and, for a retry, the stored batch's max timestamp as its append time."
    ),
    "transactions.stale_epoch": (
        "A stale or out-of-sequence epoch was answered with log start offset -1; like Kafka, "
        "Headwater now answers the partition's log start offset."
    ),
    "produce.timestamp_in_future": TIMESTAMP_BOUNDS,
    "produce.timestamp_too_old": TIMESTAMP_BOUNDS,
    "configs.config_names": (
        "Headwater knew three configs Kafka 4.0 removed (message.format.version, "
        "message.downconversion.enable, message.timestamp.difference.max.ms) and lacked nine "
        "Kafka 4.4 has (compression levels, max.decompressed.message.bytes, remote copy "
        "settings, errors.deadletterqueue.group.enable); the set is now Kafka 4.4's."
    ),
    "configs.validation": (
        "Headwater's validators differed from Kafka's at many bounds (empty or repeated "
        "cleanup.policy items, retention.bytes below -1, booleans in upper case, "
        "min.cleanable.dirty.ratio outside 0..1, throttled-replica lists, ...); they now "
        "follow Kafka 4.4's."
    ),
    "errors.list_offsets_unknown_topic": LEADER_EPOCH,
    "errors.list_offsets_unknown_partition": LEADER_EPOCH,
    "list_offsets.separate_batches": LEADER_EPOCH,
    "list_offsets.one_batch": LEADER_EPOCH,
    "list_offsets.empty_partition": LEADER_EPOCH,
    "list_offsets.after_delete_records": (
        LEADER_EPOCH + " The max-timestamp query found nothing once DeleteRecords had hidden "
        "the newest record; like Kafka it now answers the stored record with the largest "
        "timestamp, even below the log start offset."
    ),
    "errors.fetch_unknown_topic": FETCH_ERRORS,
    "errors.fetch_unknown_partition": FETCH_ERRORS,
    "errors.fetch_offset_out_of_range": FETCH_ERRORS,
    "errors.fetch_below_log_start": FETCH_ERRORS,
    "errors.produce_unknown_topic": (
        "Headwater created the topic on a Produce to an unknown topic; like Kafka it now "
        "answers UNKNOWN_TOPIC_OR_PARTITION (clients create topics through Metadata)."
    ),
    "groups.unknown_group": (
        "OffsetCommit naming a member and generation 1 for a group that does not exist was "
        "UNKNOWN_MEMBER_ID; like Kafka it is now ILLEGAL_GENERATION (GROUP_ID_NOT_FOUND from "
        "OffsetCommit v9). A group holding committed offsets exists, so there the member is "
        "still unknown."
    ),
    "groups.standalone_commit_to_active_group": (
        "OffsetCommit with generation -1 and an empty member id was accepted whatever the "
        "group's state; like Kafka, only an Empty group now takes such a standalone commit, "
        "others answer UNKNOWN_MEMBER_ID. TxnOffsetCommit stays exempt (its v0-2 name no "
        "member), now also for consumer-protocol groups, as in Kafka."
    ),
    "groups.list_groups": COMMITTED_ONLY,
    "groups.committed_only_group": COMMITTED_ONLY,
    "groups.describe_authorized_operations": GROUP_OPERATIONS,
    "groups.consumer_group_authorized_operations": GROUP_OPERATIONS,
    "metadata.api_versions_features": (
        "ApiVersions finalized transaction.version only, and listed it as supported from "
        "version 0, which a v3 answer must leave out (KIP-1022: older clients refuse such a "
        "range). Like Kafka 4 it now also finalizes group.version 1 (KIP-848) and lists no "
        "supported feature from version 0 before ApiVersions v4."
    ),
}
