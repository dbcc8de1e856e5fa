package dev.headwater.interop.clients;

import dev.headwater.interop.Json;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.ExecutionException;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AlterConfigOp;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.admin.CreateTopicsResult;
import org.apache.kafka.clients.admin.DescribeClusterResult;
import org.apache.kafka.clients.admin.DescribeTopicsOptions;
import org.apache.kafka.clients.admin.ListOffsetsResult.ListOffsetsResultInfo;
import org.apache.kafka.clients.admin.ListTransactionsOptions;
import org.apache.kafka.clients.admin.NewPartitions;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.admin.ProducerState;
import org.apache.kafka.clients.admin.RecordsToDelete;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.admin.TransactionDescription;
import org.apache.kafka.clients.admin.TransactionListing;
import org.apache.kafka.clients.admin.TransactionState;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.TopicPartitionInfo;
import org.apache.kafka.common.config.ConfigResource;

/** The Admin client: topics, offsets, records, configs and transactions. */
final class AdminScenarios {
    private AdminScenarios() {}

    /**
     * Create, list, describe (DescribeTopicPartitions, paged by a small per-response limit),
     * add partitions and delete topics; describe the cluster.
     */
    static void topics(Clients clients) throws Exception {
        try (Admin admin = clients.admin()) {
            CreateTopicsResult created = admin.createTopics(List.of(
                    new NewTopic("adm-a", 3, (short) 1)
                            .configs(Map.of("retention.ms", "3600000")),
                    new NewTopic("adm-b", 1, (short) 1),
                    new NewTopic("adm-wide", 25, (short) 1)));
            created.all().get();
            String idA = created.topicId("adm-a").get().toString();
            String duplicate = error(() -> admin.createTopics(
                    List.of(new NewTopic("adm-a", 1, (short) 1))).all().get());
            String replicated = error(() -> admin.createTopics(
                    List.of(new NewTopic("adm-rf3", 1, (short) 3))).all().get());
            Set<String> listed = admin.listTopics().names().get();

            List<String> names = List.of("adm-a", "adm-b", "adm-wide");
            Map<String, TopicDescription> whole = admin.describeTopics(names).allTopicNames().get();
            Map<String, TopicDescription> paged = admin.describeTopics(names,
                    new DescribeTopicsOptions().partitionSizeLimitPerResponse(4))
                    .allTopicNames().get();
            String unknown = error(() -> admin.describeTopics(List.of("adm-none"))
                    .allTopicNames().get());

            admin.createPartitions(Map.of("adm-b", NewPartitions.increaseTo(3))).all().get();
            int grown = admin.describeTopics(List.of("adm-b")).allTopicNames().get()
                    .get("adm-b").partitions().size();

            DescribeClusterResult cluster = admin.describeCluster();
            var nodes = new ArrayList<Object>();
            cluster.nodes().get().forEach(n -> nodes.add(Json.obj(
                    "id", n.id(), "host", n.host(), "port", n.port())));
            Json.emit("scenario", "admin-topics", "check", "cluster",
                    "cluster_id", cluster.clusterId().get(),
                    "controller", cluster.controller().get().id(), "nodes", nodes);

            admin.deleteTopics(List.of("adm-a", "adm-b", "adm-wide")).all().get();
            Set<String> afterDelete = admin.listTopics().names().get();

            Json.emit("scenario", "admin-topics", "check", "topics",
                    "listed", listed.containsAll(names),
                    "topic_id_a", idA, "duplicate", duplicate, "replication_3", replicated,
                    "whole", describeAll(whole), "paged", describeAll(paged),
                    "unknown", unknown, "grown", grown,
                    "listed_after_delete", afterDelete.stream().filter(names::contains).toList());
        }
    }

    private static Map<String, Object> describeAll(Map<String, TopicDescription> topics) {
        Map<String, Object> out = new TreeMap<>();
        topics.forEach((name, d) -> {
            List<Integer> indexes = new ArrayList<>();
            List<Object> leaders = new ArrayList<>();
            boolean inSync = true;
            for (TopicPartitionInfo p : d.partitions()) {
                indexes.add(p.partition());
                leaders.add(p.leader() == null ? null : p.leader().id());
                inSync &= p.isr().equals(p.replicas()) && p.replicas().size() == 1;
            }
            out.put(name, Json.obj("id", d.topicId().toString(), "internal", d.isInternal(),
                    "partitions", indexes, "leaders", leaders.stream().distinct().toList(),
                    "in_sync", inSync));
        });
        return out;
    }

    /** List offsets by earliest, latest, max timestamp and time; delete records below one. */
    static void offsets(Clients clients) throws Exception {
        String topic = "adm-offsets";
        TopicPartition tp = new TopicPartition(topic, 0);
        long[] timestamps = {1_000L, 2_000L, 5_000L, 3_000L};
        try (Admin admin = clients.admin()) {
            clients.createTopics(admin, Map.of(topic, 1));
            try (KafkaProducer<String, String> producer = clients.producer(Map.of())) {
                for (int i = 0; i < timestamps.length; i++) {
                    producer.send(new ProducerRecord<>(topic, 0, timestamps[i], "k", "t" + i))
                            .get();
                }
            }
            Map<String, Object> before = new TreeMap<>();
            before.put("earliest", offset(admin, tp, OffsetSpec.earliest()));
            before.put("latest", offset(admin, tp, OffsetSpec.latest()));
            before.put("max_timestamp", offset(admin, tp, OffsetSpec.maxTimestamp()));
            before.put("at_1500", offset(admin, tp, OffsetSpec.forTimestamp(1_500L)));
            before.put("at_2500", offset(admin, tp, OffsetSpec.forTimestamp(2_500L)));
            before.put("at_9999", offset(admin, tp, OffsetSpec.forTimestamp(9_999L)));
            long low = admin.deleteRecords(Map.of(tp, RecordsToDelete.beforeOffset(2L)))
                    .lowWatermarks().get(tp).get().lowWatermark();
            Map<String, Object> after = new TreeMap<>();
            after.put("earliest", offset(admin, tp, OffsetSpec.earliest()));
            after.put("latest", offset(admin, tp, OffsetSpec.latest()));
            List<String> remaining = Clients.values(clients.readAll(topic, "read_uncommitted"));
            String beyond = error(() -> admin.deleteRecords(
                    Map.of(tp, RecordsToDelete.beforeOffset(99L))).all().get());
            Json.emit("scenario", "admin-offsets", "before", before, "low_watermark", low,
                    "after", after, "remaining", remaining, "beyond_end", beyond);
        }
    }

    private static Map<String, Object> offset(Admin admin, TopicPartition tp, OffsetSpec spec)
            throws Exception {
        ListOffsetsResultInfo info = admin.listOffsets(Map.of(tp, spec)).partitionResult(tp).get();
        return Json.obj("offset", info.offset(), "timestamp", info.timestamp());
    }

    /** Describe topic and broker configs; set, append to, subtract from and delete them. */
    static void configs(Clients clients) throws Exception {
        String topic = "adm-configs";
        ConfigResource resource = new ConfigResource(ConfigResource.Type.TOPIC, topic);
        try (Admin admin = clients.admin()) {
            admin.createTopics(List.of(new NewTopic(topic, 1, (short) 1)
                    .configs(Map.of("retention.ms", "3600000")))).all().get();
            Map<String, Object> steps = new TreeMap<>();
            steps.put("0_created", topicConfig(admin, resource));
            alter(admin, resource, List.of(
                    new AlterConfigOp(new ConfigEntry("retention.ms", "7200000"),
                            AlterConfigOp.OpType.SET),
                    new AlterConfigOp(new ConfigEntry("cleanup.policy", "compact"),
                            AlterConfigOp.OpType.SET)));
            steps.put("1_set", topicConfig(admin, resource));
            alter(admin, resource, List.of(new AlterConfigOp(
                    new ConfigEntry("cleanup.policy", "delete"), AlterConfigOp.OpType.APPEND)));
            steps.put("2_append", topicConfig(admin, resource));
            alter(admin, resource, List.of(
                    new AlterConfigOp(new ConfigEntry("cleanup.policy", "compact"),
                            AlterConfigOp.OpType.SUBTRACT),
                    new AlterConfigOp(new ConfigEntry("retention.ms", ""),
                            AlterConfigOp.OpType.DELETE)));
            steps.put("3_subtract_delete", topicConfig(admin, resource));
            String invalid = error(() -> alter(admin, resource, List.of(new AlterConfigOp(
                    new ConfigEntry("retention.ms", "soon"), AlterConfigOp.OpType.SET))));
            String unknownTopic = error(() -> admin.describeConfigs(List.of(new ConfigResource(
                    ConfigResource.Type.TOPIC, "adm-none"))).all().get());

            String node = String.valueOf(admin.describeCluster().nodes().get().iterator().next().id());
            ConfigResource broker = new ConfigResource(ConfigResource.Type.BROKER, node);
            Config brokerConfig = admin.describeConfigs(List.of(broker)).all().get().get(broker);
            ConfigEntry partitions = brokerConfig.get("num.partitions");
            Json.emit("scenario", "admin-configs", "steps", steps, "invalid", invalid,
                    "unknown_topic", unknownTopic, "broker_entries", brokerConfig.entries().size(),
                    "broker_num_partitions", partitions == null ? null : partitions.value());
        }
    }

    private static void alter(Admin admin, ConfigResource resource, Collection<AlterConfigOp> ops)
            throws Exception {
        admin.incrementalAlterConfigs(Map.of(resource, ops)).all().get();
    }

    private static Map<String, Object> topicConfig(Admin admin, ConfigResource resource)
            throws Exception {
        Config config = admin.describeConfigs(List.of(resource)).all().get().get(resource);
        Map<String, Object> out = new TreeMap<>();
        for (String name : List.of("retention.ms", "cleanup.policy")) {
            ConfigEntry entry = config.get(name);
            out.put(name, entry == null ? null
                    : Json.obj("value", entry.value(), "source", entry.source().toString()));
        }
        out.put("entries", config.entries().size());
        return out;
    }

    /** An open transaction as listTransactions, describeTransactions and describeProducers see it. */
    static void transactions(Clients clients) throws Exception {
        String topic = "adm-txn";
        String txnId = "adm-txn-open";
        TopicPartition tp = new TopicPartition(topic, 0);
        try (Admin admin = clients.admin()) {
            clients.createTopics(admin, Map.of(topic, 1));
            try (KafkaProducer<String, String> producer = clients.producer(Map.of(
                    ProducerConfig.TRANSACTIONAL_ID_CONFIG, txnId,
                    ProducerConfig.TRANSACTION_TIMEOUT_CONFIG, 60_000))) {
                producer.initTransactions();
                producer.beginTransaction();
                for (int i = 0; i < 3; i++) {
                    producer.send(new ProducerRecord<>(topic, 0, "k", "open" + i));
                }
                producer.flush();
                List<String> ongoing = listTransactions(admin, Set.of(TransactionState.ONGOING));
                TransactionDescription open = admin.describeTransactions(List.of(txnId))
                        .description(txnId).get();
                List<Object> producers = new ArrayList<>();
                for (ProducerState state : admin.describeProducers(List.of(tp))
                        .partitionResult(tp).get().activeProducers()) {
                    producers.add(Json.obj("producer_id", state.producerId(),
                            "epoch", state.producerEpoch(), "last_sequence", state.lastSequence(),
                            "txn_start", state.currentTransactionStartOffset().orElse(-1L)));
                }
                producer.abortTransaction();
                TransactionDescription closed = admin.describeTransactions(List.of(txnId))
                        .description(txnId).get();
                List<String> ongoingAfter = listTransactions(admin,
                        Set.of(TransactionState.ONGOING));
                Json.emit("scenario", "admin-transactions",
                        "listed_ongoing", ongoing.contains(txnId),
                        "listed_all", listTransactions(admin, Set.of()).contains(txnId),
                        "open", describe(open), "producers", producers,
                        "after_abort", describe(closed),
                        "ongoing_after_abort", ongoingAfter.contains(txnId));
            }
        }
    }

    private static List<String> listTransactions(Admin admin, Set<TransactionState> states)
            throws Exception {
        List<String> ids = new ArrayList<>();
        for (TransactionListing listing : admin.listTransactions(
                new ListTransactionsOptions().filterStates(states)).all().get()) {
            ids.add(listing.transactionalId());
        }
        return ids;
    }

    private static Map<String, Object> describe(TransactionDescription d) {
        List<String> partitions = new ArrayList<>();
        d.topicPartitions().forEach(tp -> partitions.add(tp.toString()));
        return Json.obj("state", d.state().toString(), "producer_id", d.producerId(),
                "epoch", d.producerEpoch(), "timeout_ms", d.transactionTimeoutMs(),
                "partitions", partitions,
                "start_ms_set", d.transactionStartTimeMs().isPresent());
    }

    /**
     * What offset tools do to a group that is not running: reset its offsets, delete one
     * partition's, remove a static member; plus the broker's log dirs and features.
     */
    static void groupsAndBroker(Clients clients) throws Exception {
        String topic = "adm-group-topic";
        String group = "adm-group";
        TopicPartition p0 = new TopicPartition(topic, 0);
        TopicPartition p1 = new TopicPartition(topic, 1);
        try (Admin admin = clients.admin()) {
            clients.createTopics(admin, Map.of(topic, 2));
            try (KafkaProducer<String, String> producer = clients.producer(Map.of())) {
                for (int i = 0; i < 10; i++) {
                    producer.send(new ProducerRecord<>(topic, i % 2, "k", "v" + i));
                }
            }
            try (KafkaConsumer<String, String> consumer = clients.consumer(Map.of(
                    ConsumerConfig.GROUP_ID_CONFIG, group,
                    ConsumerConfig.GROUP_INSTANCE_ID_CONFIG, "adm-static-1",
                    ConsumerConfig.GROUP_PROTOCOL_CONFIG, "classic"))) {
                consumer.subscribe(List.of(topic));
                long deadline = System.currentTimeMillis() + Clients.DEADLINE_MS;
                int seen = 0;
                while (seen < 10 && System.currentTimeMillis() < deadline) {
                    seen += consumer.poll(Clients.POLL).count();
                }
                consumer.commitSync();
            }
            // A static member stays in the group after close until removed or timed out.
            var staticMembers = describeMembers(admin, group);
            admin.removeMembersFromConsumerGroup(group,
                    new org.apache.kafka.clients.admin.RemoveMembersFromConsumerGroupOptions(
                            List.of(new org.apache.kafka.clients.admin.MemberToRemove(
                                    "adm-static-1")))).all().get();
            var afterRemove = describeMembers(admin, group);
            Map<String, Object> committed = groupOffsets(admin, group);
            admin.alterConsumerGroupOffsets(group, Map.of(
                    p0, new OffsetAndMetadata(1), p1, new OffsetAndMetadata(2))).all().get();
            Map<String, Object> altered = groupOffsets(admin, group);
            admin.deleteConsumerGroupOffsets(group, Set.of(p1)).all().get();
            Map<String, Object> deleted = groupOffsets(admin, group);

            var node = admin.describeCluster().nodes().get().iterator().next().id();
            var dirs = admin.describeLogDirs(List.of(node)).allDescriptions().get().get(node);
            long topicBytes = 0;
            int replicas = 0;
            for (var dir : dirs.values()) {
                for (var replica : dir.replicaInfos().entrySet()) {
                    if (replica.getKey().topic().equals(topic)) {
                        replicas++;
                        topicBytes += replica.getValue().size();
                    }
                }
            }
            Map<String, Object> features = new TreeMap<>();
            admin.describeFeatures().featureMetadata().get().finalizedFeatures()
                    .forEach((name, range) -> features.put(name, range.maxVersionLevel()));
            Json.emit("scenario", "admin-groups", "static_members", staticMembers,
                    "after_remove", afterRemove, "committed", committed, "altered", altered,
                    "deleted", deleted, "log_dirs", dirs.size(), "replicas", replicas,
                    "topic_bytes_positive", topicBytes > 0, "finalized_features", features);
        }
    }

    private static List<String> describeMembers(Admin admin, String group) throws Exception {
        List<String> out = new ArrayList<>();
        admin.describeConsumerGroups(List.of(group)).describedGroups().get(group).get().members()
                .forEach(m -> out.add(m.groupInstanceId().orElse("")));
        return out;
    }

    private static Map<String, Object> groupOffsets(Admin admin, String group) throws Exception {
        Map<String, Object> out = new TreeMap<>();
        admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata().get()
                .forEach((tp, om) -> out.put(tp.toString(), om == null ? null : om.offset()));
        return out;
    }

    interface Action {
        void run() throws Exception;
    }

    /** The simple name of the exception {@code action} fails with, or "none". */
    static String error(Action action) {
        try {
            action.run();
            return "none";
        } catch (ExecutionException e) {
            return e.getCause().getClass().getSimpleName();
        } catch (Exception e) {
            return e.getClass().getSimpleName();
        }
    }
}
