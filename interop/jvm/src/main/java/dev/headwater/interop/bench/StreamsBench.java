package dev.headwater.interop.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.headwater.interop.Json;
import java.time.Duration;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.KeyValue;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.KStream;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.kstream.TimeWindows;

/**
 * The pipelines of bench/streams.py in Kafka Streams, timed the way bench/_headwater_runner.py
 * times headwater.streams: from the first record processed until the run's final commit.
 *
 * <p>Arguments: pipeline (filter-map | window), bootstrap, source topic, sink topic, number of
 * input records, state directory, guarantee (at-least-once | exactly-once). Prints one JSON line
 * with processed, seconds and first_record_s. Settings are Kafka Streams' defaults but for the
 * guarantee, one stream thread (as the headwater run) and the consumer session timeout.
 */
public final class StreamsBench {
    private static final ObjectMapper MAPPER = new ObjectMapper();

    private StreamsBench() {}

    public static void main(String[] args) throws Exception {
        String pipeline = args[0];
        String bootstrap = args[1];
        String source = args[2];
        String sink = args[3];
        long expected = Long.parseLong(args[4]);
        String stateDir = args[5];
        String guarantee = args[6];
        long started = System.nanoTime();
        AtomicLong processed = new AtomicLong();
        AtomicLong firstRecordAt = new AtomicLong();
        CountDownLatch allSeen = new CountDownLatch(1);

        StreamsBuilder builder = new StreamsBuilder();
        KStream<String, String> input =
                builder.stream(source, Consumed.with(Serdes.String(), Serdes.String()))
                        .peek(
                                (key, value) -> {
                                    long seen = processed.incrementAndGet();
                                    if (seen == 1) {
                                        firstRecordAt.set(System.nanoTime());
                                    }
                                    if (seen == expected) {
                                        allSeen.countDown();
                                    }
                                });
        if (pipeline.equals("filter-map")) {
            input.mapValues(StreamsBench::parse)
                    .filter((key, value) -> value.get("value").asDouble() >= 0.1)
                    .mapValues(StreamsBench::scaled)
                    .to(sink, Produced.with(Serdes.String(), Serdes.String()));
        } else {
            input.groupByKey()
                    .windowedBy(TimeWindows.ofSizeWithNoGrace(Duration.ofSeconds(1)))
                    .count()
                    .toStream()
                    .map(
                            (window, count) ->
                                    KeyValue.pair(
                                            window.key(),
                                            Json.write(
                                                    Json.obj(
                                                            "start",
                                                            window.window().start(),
                                                            "count",
                                                            count))))
                    .to(sink, Produced.with(Serdes.String(), Serdes.String()));
        }

        Properties props = new Properties();
        props.put(StreamsConfig.APPLICATION_ID_CONFIG, "ks-" + pipeline + "-" + sink);
        props.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.put(StreamsConfig.STATE_DIR_CONFIG, stateDir);
        props.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, 1);
        props.put(
                StreamsConfig.PROCESSING_GUARANTEE_CONFIG,
                guarantee.equals("exactly-once")
                        ? StreamsConfig.EXACTLY_ONCE_V2
                        : StreamsConfig.AT_LEAST_ONCE);
        props.put(StreamsConfig.consumerPrefix("session.timeout.ms"), 6000);
        props.put(StreamsConfig.consumerPrefix("auto.offset.reset"), "earliest");

        KafkaStreams streams = new KafkaStreams(builder.build(), props);
        streams.start();
        if (!allSeen.await(900, TimeUnit.SECONDS)) {
            throw new IllegalStateException("saw " + processed.get() + " of " + expected);
        }
        // close() commits what was processed (and the transaction, exactly-once): the end of
        // the run, as the headwater run ends with its final commit.
        streams.close(Duration.ofSeconds(120));
        long ended = System.nanoTime();
        Json.emit(
                "processed",
                processed.get(),
                "seconds",
                (ended - firstRecordAt.get()) / 1e9,
                "first_record_s",
                (firstRecordAt.get() - started) / 1e9);
    }

    private static JsonNode parse(String value) {
        try {
            return MAPPER.readTree(value);
        } catch (Exception exc) {
            throw new IllegalArgumentException("not JSON: " + value, exc);
        }
    }

    private static String scaled(JsonNode value) {
        ObjectNode out = MAPPER.createObjectNode();
        out.set("id", value.get("id"));
        out.set("key", value.get("key"));
        out.put("scaled", value.get("value").asDouble() * 100);
        return out.toString();
    }
}
