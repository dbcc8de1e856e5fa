package dev.headwater.interop.clients;

import dev.headwater.interop.Json;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.Future;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.ProducerState;
import org.apache.kafka.clients.admin.TransactionDescription;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.header.Header;

/** The idempotent producer, transactions and the consume-transform-produce loop. */
final class ProducerScenarios {
    private ProducerScenarios() {}

    /** 300 records over 3 partitions: each acknowledged once, stored once, in send order. */
    static void idempotent(Clients clients) throws Exception {
        String topic = "java-idempotent";
        int count = 300;
        try (Admin admin = clients.admin()) {
            clients.createTopics(admin, Map.of(topic, 3));
            List<Future<RecordMetadata>> acks = new ArrayList<>();
            try (KafkaProducer<String, String> producer = clients.producer(Map.of(
                    ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, true,
                    ProducerConfig.ACKS_CONFIG, "all",
                    ProducerConfig.MAX_IN_FLIGHT_REQUESTS_PER_CONNECTION, 5))) {
                for (int i = 0; i < count; i++) {
                    acks.add(producer.send(new ProducerRecord<>(topic, "k" + (i % 30), "v" + i)));
                }
                producer.flush();
            }
            int acked = 0;
            for (Future<RecordMetadata> ack : acks) {
                ack.get();
                acked++;
            }
            List<ConsumerRecord<String, String>> records = clients.readAll(topic, "read_uncommitted");
            Set<String> distinct = new HashSet<>(Clients.values(records));
            // Per key, values must come back in the order they were sent.
            Map<String, Integer> lastByKey = new HashMap<>();
            boolean ordered = true;
            for (ConsumerRecord<String, String> record : records) {
                int n = Integer.parseInt(record.value().substring(1));
                Integer last = lastByKey.put(record.key(), n);
                ordered &= last == null || last < n;
            }
            List<TopicPartition> partitions = new ArrayList<>();
            for (int p = 0; p < 3; p++) {
                partitions.add(new TopicPartition(topic, p));
            }
            long sequences = 0;
            Set<Long> producerIds = new HashSet<>();
            var described = admin.describeProducers(partitions).all().get();
            for (var entry : described.values()) {
                for (ProducerState state : entry.activeProducers()) {
                    producerIds.add(state.producerId());
                    sequences += state.lastSequence() + 1;
                }
            }
            Json.emit("scenario", "idempotent", "sent", count, "acked", acked,
                    "consumed", records.size(), "distinct", distinct.size(), "ordered", ordered,
                    "producer_ids", producerIds.size(), "sequences", sequences);
        }
    }

    /**
     * Commit, abort, commit; read_committed sees the committed records only. A second producer
     * with the same transactional id fences the first.
     */
    static void transactions(Clients clients) throws Exception {
        String topic = "java-transactions";
        String txnId = "java-txn";
        try (Admin admin = clients.admin()) {
            clients.createTopics(admin, Map.of(topic, 2));
            KafkaProducer<String, String> first = clients.producer(Map.of(
                    ProducerConfig.TRANSACTIONAL_ID_CONFIG, txnId));
            first.initTransactions();
            sendInTransaction(first, topic, "c", 0, 10, true);
            sendInTransaction(first, topic, "a", 0, 10, false);
            sendInTransaction(first, topic, "c", 10, 20, true);
            TransactionDescription afterThree =
                    admin.describeTransactions(List.of(txnId)).description(txnId).get();

            KafkaProducer<String, String> second = clients.producer(Map.of(
                    ProducerConfig.TRANSACTIONAL_ID_CONFIG, txnId));
            second.initTransactions();
            // The fenced producer's send or its commit fails; which one depends on whether the
            // produce is refused first (transaction version 2 sends no AddPartitionsToTxn).
            String fenced = AdminScenarios.error(
                    () -> sendInTransaction(first, topic, "z", 0, 1, true));
            first.close(Duration.ZERO);
            sendInTransaction(second, topic, "s", 0, 1, true);
            second.close();

            List<String> committed = Clients.values(clients.readAll(topic, "read_committed"));
            List<String> everything = Clients.values(clients.readAll(topic, "read_uncommitted"));
            Json.emit("scenario", "transactions",
                    "committed", new TreeMap<>(counts(committed)),
                    "uncommitted", new TreeMap<>(counts(everything)),
                    "committed_distinct", new HashSet<>(committed).size(),
                    "state_after_three", afterThree.state().toString(),
                    "epoch_after_three", afterThree.producerEpoch(),
                    "fenced", fenced);
        }
    }

    private static void sendInTransaction(KafkaProducer<String, String> producer, String topic,
            String prefix, int from, int to, boolean commit) throws Exception {
        producer.beginTransaction();
        List<Future<RecordMetadata>> acks = new ArrayList<>();
        for (int i = from; i < to; i++) {
            acks.add(producer.send(new ProducerRecord<>(topic, "k" + i, prefix + i)));
        }
        producer.flush();
        for (Future<RecordMetadata> ack : acks) {
            ack.get();
        }
        if (commit) {
            producer.commitTransaction();
        } else {
            producer.abortTransaction();
        }
    }

    /** Records per value prefix ("c", "a", ...). */
    private static Map<String, Integer> counts(Collection<String> values) {
        Map<String, Integer> out = new HashMap<>();
        values.forEach(v -> out.merge(v.substring(0, 1), 1, Integer::sum));
        return out;
    }

    /**
     * Read 60 records, write each upper-cased to an output topic and commit the input offsets
     * in the same transaction (sendOffsetsToTransaction with the consumer's group metadata).
     * The first transaction is aborted and its input re-read: the output holds every input
     * exactly once and the group's committed offsets are the input's end.
     */
    static void consumeTransformProduce(Clients clients) throws Exception {
        String input = "java-ctp-in";
        String output = "java-ctp-out";
        String group = "java-ctp";
        int count = 60;
        try (Admin admin = clients.admin()) {
            clients.createTopics(admin, Map.of(input, 3, output, 3));
            try (KafkaProducer<String, String> producer = clients.producer(Map.of())) {
                for (int i = 0; i < count; i++) {
                    producer.send(new ProducerRecord<>(input, "k" + (i % 6), "m" + i));
                }
            }
            int transactions = 0;
            int aborted = 0;
            try (KafkaConsumer<String, String> consumer = clients.consumer(Map.of(
                            ConsumerConfig.GROUP_ID_CONFIG, group,
                            ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed",
                            ConsumerConfig.MAX_POLL_RECORDS_CONFIG, 7));
                    KafkaProducer<String, String> producer = clients.producer(Map.of(
                            ProducerConfig.TRANSACTIONAL_ID_CONFIG, "java-ctp-app"))) {
                producer.initTransactions();
                consumer.subscribe(List.of(input));
                Map<TopicPartition, Long> done = new HashMap<>();
                long deadline = System.currentTimeMillis() + Clients.DEADLINE_MS;
                while (done.values().stream().mapToLong(Long::longValue).sum() < count) {
                    if (System.currentTimeMillis() > deadline) {
                        throw new IllegalStateException("consumed only " + done);
                    }
                    ConsumerRecords<String, String> records = consumer.poll(Clients.POLL);
                    if (records.isEmpty()) {
                        continue;
                    }
                    producer.beginTransaction();
                    Map<TopicPartition, OffsetAndMetadata> offsets = new HashMap<>();
                    for (ConsumerRecord<String, String> record : records) {
                        producer.send(new ProducerRecord<>(
                                output, record.key(), record.value().toUpperCase()));
                        offsets.put(new TopicPartition(record.topic(), record.partition()),
                                new OffsetAndMetadata(record.offset() + 1));
                    }
                    producer.sendOffsetsToTransaction(offsets, consumer.groupMetadata());
                    transactions++;
                    if (aborted == 0) {
                        producer.abortTransaction();
                        aborted++;
                        rewind(consumer);
                        continue;
                    }
                    producer.commitTransaction();
                    offsets.forEach((tp, next) -> done.put(tp, next.offset()));
                }
            }
            List<String> out = Clients.values(clients.readAll(output, "read_committed"));
            Set<String> expected = new HashSet<>();
            for (int i = 0; i < count; i++) {
                expected.add("M" + i);
            }
            Map<String, Object> committed = new TreeMap<>();
            admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata().get()
                    .forEach((tp, om) -> committed.put(tp.toString(), om.offset()));
            Json.emit("scenario", "consume-transform-produce",
                    "output", out.size(), "distinct", new HashSet<>(out).size(),
                    "exact", new HashSet<>(out).equals(expected),
                    "transactions", transactions, "aborted", aborted,
                    "committed", committed, "committed_total",
                    committed.values().stream().mapToLong(v -> (Long) v).sum());
        }
    }

    /** After an abort, go back to the last committed offsets (or the start) of every partition. */
    private static void rewind(KafkaConsumer<String, String> consumer) {
        Set<TopicPartition> assigned = consumer.assignment();
        Map<TopicPartition, OffsetAndMetadata> committed = consumer.committed(assigned);
        for (TopicPartition tp : assigned) {
            OffsetAndMetadata offset = committed.get(tp);
            if (offset == null) {
                consumer.seekToBeginning(List.of(tp));
            } else {
                consumer.seek(tp, offset.offset());
            }
        }
    }

    /**
     * Every codec the Java producer offers, with headers and null keys: the broker stores the
     * batches as they come, and the consumer must get every record back intact.
     */
    static void compression(Clients clients) throws Exception {
        String topic = "java-compression";
        List<String> codecs = List.of("none", "gzip", "snappy", "lz4", "zstd");
        int perCodec = 50;
        try (Admin admin = clients.admin()) {
            clients.createTopics(admin, Map.of(topic, 1));
        }
        for (String codec : codecs) {
            try (KafkaProducer<String, String> producer = clients.producer(Map.of(
                    ProducerConfig.COMPRESSION_TYPE_CONFIG, codec,
                    ProducerConfig.LINGER_MS_CONFIG, 50))) {
                for (int i = 0; i < perCodec; i++) {
                    String key = i % 5 == 0 ? null : "k" + i;
                    ProducerRecord<String, String> record = new ProducerRecord<>(
                            topic, key, codec + "-" + i + "-" + "x".repeat(i * 20));
                    record.headers().add("codec", codec.getBytes());
                    record.headers().add("index", Integer.toString(i).getBytes());
                    producer.send(record);
                }
            }
        }
        Map<String, Integer> intact = new TreeMap<>();
        for (ConsumerRecord<String, String> record : clients.readAll(topic, "read_uncommitted")) {
            Header codec = record.headers().lastHeader("codec");
            int i = Integer.parseInt(new String(record.headers().lastHeader("index").value()));
            String name = new String(codec.value());
            boolean ok = record.value().equals(name + "-" + i + "-" + "x".repeat(i * 20))
                    && (i % 5 == 0 ? record.key() == null : record.key().equals("k" + i));
            if (ok) {
                intact.merge(name, 1, Integer::sum);
            }
        }
        Json.emit("scenario", "compression", "intact", intact);
    }
}
