package dev.headwater.interop.clients;

import dev.headwater.interop.Json;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.function.BooleanSupplier;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.ConsumerGroupDescription;
import org.apache.kafka.clients.admin.GroupListing;
import org.apache.kafka.clients.admin.ListGroupsOptions;
import org.apache.kafka.clients.admin.MemberDescription;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;

/**
 * A consumer group's life as the Java client and Admin see it: one member takes every
 * partition, a second one splits them, both consume and commit, the first leaves and the
 * second takes everything back, then the empty group is described, listed and deleted.
 */
final class GroupScenarios {
    private GroupScenarios() {}

    static void group(Clients clients, String protocol) throws Exception {
        String scenario = "group-" + protocol;
        String topic = "java-group-" + protocol;
        String group = "java-group-" + protocol;
        int partitions = 4;
        int perPartition = 10;
        Map<String, Object> props = new HashMap<>();
        props.put(ConsumerConfig.GROUP_ID_CONFIG, group);
        props.put(ConsumerConfig.GROUP_PROTOCOL_CONFIG, protocol);
        if (protocol.equals("classic")) {
            // A member learns of a rebalance at its next heartbeat; 3 s would dominate the run.
            // The consumer protocol takes its heartbeat interval from the broker instead.
            props.put(ConsumerConfig.HEARTBEAT_INTERVAL_MS_CONFIG, 500);
            props.put(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG, 10_000);
        }
        try (Admin admin = clients.admin()) {
            clients.createTopics(admin, Map.of(topic, partitions));
            KafkaConsumer<String, String> first = clients.consumer(props);
            KafkaConsumer<String, String> second = clients.consumer(props);
            List<KafkaConsumer<String, String>> both = List.of(first, second);

            first.subscribe(List.of(topic));
            pollUntil(List.of(first), () -> first.assignment().size() == partitions, "first");
            int alone = first.assignment().size();

            second.subscribe(List.of(topic));
            pollUntil(both, () -> split(first, second, partitions), "the split");
            List<Integer> sizes = List.of(first.assignment().size(), second.assignment().size());

            try (KafkaProducer<String, String> producer = clients.producer(Map.of())) {
                for (int p = 0; p < partitions; p++) {
                    for (int i = 0; i < perPartition; i++) {
                        producer.send(new ProducerRecord<>(topic, p, "k" + i, "p" + p + "-" + i));
                    }
                }
            }
            Set<String> seen = new HashSet<>();
            long deadline = System.currentTimeMillis() + Clients.DEADLINE_MS;
            while (seen.size() < partitions * perPartition) {
                if (System.currentTimeMillis() > deadline) {
                    throw new IllegalStateException("consumed only " + seen.size());
                }
                for (KafkaConsumer<String, String> consumer : both) {
                    var records = consumer.poll(Clients.POLL);
                    for (ConsumerRecord<String, String> record : records) {
                        seen.add(record.partition() + ":" + record.offset());
                    }
                    if (!records.isEmpty()) {
                        consumer.commitSync();
                    }
                }
            }
            ConsumerGroupDescription live = describe(admin, group);

            long leaving = System.nanoTime();
            first.close();
            pollUntil(List.of(second), () -> second.assignment().size() == partitions, "takeover");
            long takeoverMs = (System.nanoTime() - leaving) / 1_000_000;
            ConsumerGroupDescription afterLeave = describe(admin, group);
            second.close();

            ConsumerGroupDescription empty = describe(admin, group);
            Map<String, Object> committed = new TreeMap<>();
            admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata().get()
                    .forEach((tp, om) -> committed.put(tp.toString(), om.offset()));
            GroupListing listed = listing(admin, group);
            admin.deleteConsumerGroups(List.of(group)).all().get();
            boolean listedAfterDelete = listing(admin, group) != null;

            Json.emit("scenario", scenario,
                    "alone", alone, "split", sizes, "consumed", seen.size(),
                    "live", summary(live), "after_leave", summary(afterLeave),
                    "takeover_ms", takeoverMs, "empty", summary(empty),
                    "committed", committed,
                    "listed", listed == null ? null : Json.obj(
                            "type", listed.type().map(Object::toString).orElse(null),
                            "protocol", listed.protocol(),
                            "state", listed.groupState().map(Object::toString).orElse(null)),
                    "listed_after_delete", listedAfterDelete);
        }
    }

    private static boolean split(KafkaConsumer<?, ?> a, KafkaConsumer<?, ?> b, int partitions) {
        Set<TopicPartition> union = new HashSet<>(a.assignment());
        union.addAll(b.assignment());
        return !a.assignment().isEmpty() && !b.assignment().isEmpty()
                && a.assignment().size() + b.assignment().size() == partitions
                && union.size() == partitions;
    }

    private static void pollUntil(List<KafkaConsumer<String, String>> consumers,
            BooleanSupplier done, String what) {
        long deadline = System.currentTimeMillis() + Clients.DEADLINE_MS;
        while (!done.getAsBoolean()) {
            if (System.currentTimeMillis() > deadline) {
                throw new IllegalStateException("timed out waiting for " + what);
            }
            for (KafkaConsumer<String, String> consumer : consumers) {
                consumer.poll(Clients.POLL);
            }
        }
    }

    private static ConsumerGroupDescription describe(Admin admin, String group) throws Exception {
        return admin.describeConsumerGroups(List.of(group)).describedGroups().get(group).get();
    }

    private static Map<String, Object> summary(ConsumerGroupDescription group) {
        List<Integer> assigned = new ArrayList<>();
        for (MemberDescription member : group.members()) {
            assigned.add(member.assignment().topicPartitions().size());
        }
        return Json.obj("state", group.groupState().toString(), "type", group.type().toString(),
                "members", group.members().size(), "assigned", assigned,
                "coordinator", group.coordinator() == null ? null : group.coordinator().id());
    }

    private static GroupListing listing(Admin admin, String group) throws Exception {
        for (GroupListing listing : admin.listGroups(ListGroupsOptions.forConsumerGroups())
                .all().get()) {
            if (listing.groupId().equals(group)) {
                return listing;
            }
        }
        return null;
    }
}
