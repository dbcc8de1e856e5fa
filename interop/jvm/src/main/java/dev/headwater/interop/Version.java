package dev.headwater.interop;

import org.apache.kafka.common.utils.internals.AppInfoParser;

/** Prints the Kafka client version on the classpath: a smoke test of the interop build. */
public final class Version {
    private Version() {}

    public static void main(String[] args) {
        Json.emit("kafka_clients", AppInfoParser.getVersion(), "java", Runtime.version().toString());
    }
}
