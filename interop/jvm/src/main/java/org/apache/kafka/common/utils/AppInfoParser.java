package org.apache.kafka.common.utils;

/**
 * Compatibility shim, not part of Kafka: connect-file 4.3.1 (the newest published; 4.4.0 is not
 * on Maven Central) calls {@code org.apache.kafka.common.utils.AppInfoParser.getVersion()} from
 * its connectors' {@code version()}, and kafka-clients 4.4 moved that class to
 * {@code org.apache.kafka.common.utils.internals}. Without this class Connect cannot load
 * FileStreamSource or FileStreamSink ({@code NoClassDefFoundError}). It lives in
 * headwater-interop.jar, which only our Java programs and Connect workers put on their
 * classpath; delete it when connect-file moves to ${kafka.version} in the pom.
 */
public final class AppInfoParser {
    private AppInfoParser() {}

    public static String getVersion() {
        return org.apache.kafka.common.utils.internals.AppInfoParser.getVersion();
    }

    public static String getCommitId() {
        return org.apache.kafka.common.utils.internals.AppInfoParser.getCommitId();
    }
}
