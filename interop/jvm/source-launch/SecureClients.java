import java.io.BufferedReader;
import java.io.FileReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.Reader;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

/**
 * Kafka's Java client over TLS and SASL, for tests/test_security_clients.py.
 *
 * <p>Run with Java's source-file launcher on the cached Kafka jars (it is not part of
 * headwater-interop.jar): {@code java -cp <jars> SecureClients.java [<name>=<properties file>
 * ...]}. Without arguments it reads the pairs from stdin, one a line, so the test can change
 * the broker (grant an ACL, say) between two scenarios of one JVM. For each pair it produces
 * three records with the client settings in the file (plus {@code topic}, and {@code
 * produce.only=true} to stop there), reads them back from partition 0 and prints one JSON
 * line: {@code {"scenario": name, "values": [...]}}, or {@code {"scenario": name, "error":
 * class, "causes": [classes], "message": text}} when the client throws. The producer's and
 * consumer's timeouts below are defaults the file may override.
 */
public final class SecureClients {
    private static final int COUNT = 3;

    private SecureClients() {}

    public static void main(String[] args) throws IOException {
        if (args.length > 0) {
            for (String arg : args) {
                play(arg);
            }
            return;
        }
        BufferedReader input =
                new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        for (String line = input.readLine(); line != null; line = input.readLine()) {
            if (!line.isBlank()) {
                play(line.strip());
            }
        }
    }

    private static void play(String arg) throws IOException {
        int eq = arg.indexOf('=');
        String name = arg.substring(0, eq);
        Properties settings = new Properties();
        try (Reader reader = new FileReader(arg.substring(eq + 1))) {
            settings.load(reader);
        }
        System.out.println(run(name, settings));
        System.out.flush();
    }

    private static String run(String name, Properties settings) {
        String topic = (String) settings.remove("topic");
        boolean produceOnly = Boolean.parseBoolean((String) settings.remove("produce.only"));
        try {
            return "{\"scenario\": " + quote(name) + ", \"values\": "
                    + roundTrip(topic, settings, produceOnly) + "}";
        } catch (Exception e) {
            StringBuilder causes = new StringBuilder("[");
            for (Throwable t = e; t != null; t = t.getCause()) {
                if (causes.length() > 1) {
                    causes.append(", ");
                }
                causes.append(quote(t.getClass().getName()));
            }
            causes.append(']');
            Throwable root = e;
            while (root.getCause() != null) {
                root = root.getCause();
            }
            return "{\"scenario\": " + quote(name) + ", \"error\": "
                    + quote(e.getClass().getName()) + ", \"causes\": " + causes
                    + ", \"message\": " + quote(String.valueOf(root.getMessage())) + "}";
        }
    }

    private static String roundTrip(String topic, Properties settings, boolean produceOnly)
            throws Exception {
        Properties producerProps = new Properties();
        producerProps.put("acks", "all");
        producerProps.put("max.block.ms", "20000");
        producerProps.put("request.timeout.ms", "10000");
        producerProps.put("delivery.timeout.ms", "20000");
        producerProps.putAll(settings);
        List<String> values = new ArrayList<>();
        try (KafkaProducer<String, String> producer =
                new KafkaProducer<>(producerProps, new StringSerializer(), new StringSerializer())) {
            for (int i = 0; i < COUNT; i++) {
                producer.send(new ProducerRecord<>(topic, 0, null, "record-" + i))
                        .get(30, TimeUnit.SECONDS);
                values.add("record-" + i);
            }
        }
        if (produceOnly) {
            return json(values);
        }
        values.clear();
        Properties consumerProps = new Properties();
        consumerProps.put("enable.auto.commit", "false");
        consumerProps.put("default.api.timeout.ms", "20000");
        consumerProps.putAll(settings);
        consumerProps.remove("max.block.ms");
        try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(
                consumerProps, new StringDeserializer(), new StringDeserializer())) {
            TopicPartition partition = new TopicPartition(topic, 0);
            consumer.assign(List.of(partition));
            consumer.seekToBeginning(List.of(partition));
            long deadline = System.currentTimeMillis() + 30_000;
            while (values.size() < COUNT && System.currentTimeMillis() < deadline) {
                for (ConsumerRecord<String, String> record : consumer.poll(Duration.ofMillis(200))) {
                    values.add(record.value());
                }
            }
        }
        return json(values);
    }

    private static String json(List<String> values) {
        StringBuilder out = new StringBuilder("[");
        for (String value : values) {
            if (out.length() > 1) {
                out.append(", ");
            }
            out.append(quote(value));
        }
        return out.append(']').toString();
    }

    private static String quote(String text) {
        StringBuilder out = new StringBuilder("\"");
        for (char c : text.toCharArray()) {
            if (c == '"' || c == '\\') {
                out.append('\\').append(c);
            } else if (c < 0x20) {
                out.append(String.format("\\u%04x", (int) c));
            } else {
                out.append(c);
            }
        }
        return out.append('"').toString();
    }
}
