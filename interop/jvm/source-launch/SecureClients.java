import java.io.FileReader;
import java.io.IOException;
import java.io.Reader;
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
 * headwater-interop.jar): {@code java -cp <jars> SecureClients.java <name>=<properties file>
 * ...}. For each pair it produces three records with the client settings in the file (plus
 * {@code topic}), reads them back from partition 0 and prints one JSON line: {@code
 * {"scenario": name, "values": [...]}}, or {@code {"scenario": name, "error": class,
 * "causes": [classes], "message": text}} when the client throws.
 */
public final class SecureClients {
    private static final int COUNT = 3;

    private SecureClients() {}

    public static void main(String[] args) throws IOException {
        for (String arg : args) {
            int eq = arg.indexOf('=');
            String name = arg.substring(0, eq);
            Properties settings = new Properties();
            try (Reader reader = new FileReader(arg.substring(eq + 1))) {
                settings.load(reader);
            }
            System.out.println(run(name, settings));
            System.out.flush();
        }
    }

    private static String run(String name, Properties settings) {
        String topic = (String) settings.remove("topic");
        try {
            return "{\"scenario\": " + quote(name) + ", \"values\": " + roundTrip(topic, settings)
                    + "}";
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

    private static String roundTrip(String topic, Properties settings) throws Exception {
        Properties producerProps = new Properties();
        producerProps.putAll(settings);
        producerProps.put("acks", "all");
        producerProps.put("max.block.ms", "20000");
        producerProps.put("request.timeout.ms", "10000");
        producerProps.put("delivery.timeout.ms", "20000");
        try (KafkaProducer<String, String> producer =
                new KafkaProducer<>(producerProps, new StringSerializer(), new StringSerializer())) {
            for (int i = 0; i < COUNT; i++) {
                producer.send(new ProducerRecord<>(topic, 0, null, "record-" + i))
                        .get(30, TimeUnit.SECONDS);
            }
        }
        Properties consumerProps = new Properties();
        consumerProps.putAll(settings);
        consumerProps.put("enable.auto.commit", "false");
        consumerProps.put("default.api.timeout.ms", "20000");
        List<String> values = new ArrayList<>();
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
