package dev.headwater.interop.streams;

import dev.headwater.interop.Json;
import java.time.Duration;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicLong;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.common.serialization.Serde;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.KeyValue;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.Topology;
import org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.Grouped;
import org.apache.kafka.streams.kstream.KStream;
import org.apache.kafka.streams.kstream.KTable;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.kstream.TimeWindows;

/**
 * A Kafka Streams application with exactly-once processing (exactly_once_v2) that exercises what
 * Streams asks of a broker: a repartition (selectKey, then groupByKey), a windowed count kept in
 * a changelog-backed store, and a stream-table join against a table restored from its changelog.
 *
 * <p>Input: {@code orders} (key order id, value {@code "orderId,customer,amount"}) and
 * {@code customers} (key customer id, value {@code "name,region"}). Output:
 * {@code order-counts} (key {@code "customer@windowStartMs"}, value the count of the customer's
 * orders in that 10 s window) and {@code enriched-orders} (key customer, value the order and its
 * customer joined). Usage: {@code StreamsApp <bootstrap> <state-dir> [slow-ms]}; slow-ms delays
 * every order, so a test can kill the JVM while it is mid-way through its input.
 *
 * <p>Prints {@code {"state": ...}} lines as the client changes state, {@code {"processed": n}}
 * after every 25 orders read in this run (so a test knows how far it got before a kill), and
 * {@code {"error": ...}} if a stream thread dies. SIGTERM closes it cleanly; SIGKILL is the
 * crash the tests inflict.
 */
public final class StreamsApp {
    static final String APPLICATION_ID = "headwater-interop-streams";
    static final Duration WINDOW = Duration.ofSeconds(10);
    // Repartitioned records from different input partitions interleave in any order, so the
    // grace period covers the whole input: no record may be dropped as late in one run only.
    static final Duration GRACE = Duration.ofHours(1);

    private StreamsApp() {}

    static final int PROGRESS_EVERY = 25;

    static Topology topology(long slowMs) {
        Serde<String> strings = Serdes.String();
        AtomicLong processed = new AtomicLong();
        StreamsBuilder builder = new StreamsBuilder();
        KTable<String, String> customers = builder.table("customers",
                Consumed.with(strings, strings), Materialized.as("customers-store"));
        KStream<String, String> byCustomer = builder
                .stream("orders", Consumed.with(strings, strings))
                .peek((key, value) -> {
                    pause(slowMs);
                    long count = processed.incrementAndGet();
                    if (count % PROGRESS_EVERY == 0) {
                        Json.emit("processed", count);
                    }
                })
                .selectKey((orderId, order) -> order.split(",")[1]);
        byCustomer
                .groupByKey(Grouped.with("orders-by-customer", strings, strings))
                .windowedBy(TimeWindows.ofSizeAndGrace(WINDOW, GRACE))
                .count(Materialized.as("order-counts-store"))
                .toStream()
                .map((window, count) -> KeyValue.pair(
                        window.key() + "@" + window.window().start(), String.valueOf(count)))
                .to("order-counts", Produced.with(strings, strings));
        byCustomer
                .join(customers, (order, customer) -> order + "," + customer)
                .to("enriched-orders", Produced.with(strings, strings));
        return builder.build();
    }

    static Properties config(String bootstrap, String stateDir) {
        Properties props = new Properties();
        props.put(StreamsConfig.APPLICATION_ID_CONFIG, APPLICATION_ID);
        props.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, StreamsConfig.EXACTLY_ONCE_V2);
        props.put(StreamsConfig.STATE_DIR_CONFIG, stateDir);
        props.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, 1);
        props.put(StreamsConfig.REPLICATION_FACTOR_CONFIG, 1);
        props.put(StreamsConfig.DEFAULT_KEY_SERDE_CLASS_CONFIG, Serdes.StringSerde.class);
        props.put(StreamsConfig.DEFAULT_VALUE_SERDE_CLASS_CONFIG, Serdes.StringSerde.class);
        // Static membership: the instance restarted after a kill -9 takes its old member's
        // place at once instead of waiting for that member's session to time out. The state
        // directory keeps the process id, so the transactional ids are the same too and the
        // restarted producer fences the dead one's open transaction at once.
        props.put(StreamsConfig.consumerPrefix(ConsumerConfig.GROUP_INSTANCE_ID_CONFIG),
                "headwater-interop-streams-1");
        props.put(StreamsConfig.consumerPrefix(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG), 10_000);
        props.put(StreamsConfig.consumerPrefix(ConsumerConfig.HEARTBEAT_INTERVAL_MS_CONFIG), 1_000);
        return props;
    }

    private static void pause(long millis) {
        if (millis <= 0) {
            return;
        }
        try {
            Thread.sleep(millis);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    public static void main(String[] args) throws InterruptedException {
        if (args.length < 2) {
            System.err.println("usage: StreamsApp <bootstrap> <state-dir> [slow-ms]");
            System.exit(2);
        }
        long slowMs = args.length > 2 ? Long.parseLong(args[2]) : 0;
        KafkaStreams streams = new KafkaStreams(topology(slowMs), config(args[0], args[1]));
        CountDownLatch closed = new CountDownLatch(1);
        streams.setStateListener((now, before) -> Json.emit("state", now.toString()));
        streams.setUncaughtExceptionHandler(error -> {
            Json.emit("error", String.valueOf(error));
            return StreamsUncaughtExceptionHandler.StreamThreadExceptionResponse.SHUTDOWN_CLIENT;
        });
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            streams.close(Duration.ofSeconds(30));
            Json.emit("closed", true);
            closed.countDown();
        }));
        streams.start();
        closed.await();
    }
}
