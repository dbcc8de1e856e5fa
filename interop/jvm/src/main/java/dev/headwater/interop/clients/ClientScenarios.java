package dev.headwater.interop.clients;

import dev.headwater.interop.Json;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Runs named Java-client scenarios against one broker, in one JVM (a JVM start costs seconds of
 * CPU on a small machine), and prints each scenario's findings as JSON lines.
 *
 * <p>Usage: {@code ClientScenarios <bootstrap> <scenario>...}. Every line carries
 * {@code "scenario"}; a scenario that throws prints {@code "error"} with the stack trace and the
 * others still run, so one broker bug does not hide the rest. The exit code is 0 either way:
 * the Python tests judge the lines.
 */
public final class ClientScenarios {
    private ClientScenarios() {}

    interface Scenario {
        void run(Clients clients) throws Exception;
    }

    static Map<String, Scenario> scenarios() {
        Map<String, Scenario> all = new LinkedHashMap<>();
        all.put("idempotent", ProducerScenarios::idempotent);
        all.put("compression", ProducerScenarios::compression);
        all.put("transactions", ProducerScenarios::transactions);
        all.put("consume-transform-produce", ProducerScenarios::consumeTransformProduce);
        all.put("group-classic", clients -> GroupScenarios.group(clients, "classic"));
        all.put("group-consumer", clients -> GroupScenarios.group(clients, "consumer"));
        all.put("admin-topics", AdminScenarios::topics);
        all.put("admin-offsets", AdminScenarios::offsets);
        all.put("admin-configs", AdminScenarios::configs);
        all.put("admin-transactions", AdminScenarios::transactions);
        all.put("admin-groups", AdminScenarios::groupsAndBroker);
        return all;
    }

    public static void main(String[] args) {
        if (args.length < 2) {
            System.err.println("usage: ClientScenarios <bootstrap> <scenario>... of "
                    + scenarios().keySet());
            System.exit(2);
        }
        Clients clients = new Clients(args[0]);
        Map<String, Scenario> all = scenarios();
        for (int i = 1; i < args.length; i++) {
            String name = args[i];
            Scenario scenario = all.get(name);
            if (scenario == null) {
                Json.emit("scenario", name, "error", "unknown scenario");
                continue;
            }
            long started = System.nanoTime();
            try {
                scenario.run(clients);
                Json.emit("scenario", name, "done", true,
                        "elapsed_ms", (System.nanoTime() - started) / 1_000_000);
            } catch (Exception | AssertionError e) {
                StringWriter trace = new StringWriter();
                e.printStackTrace(new PrintWriter(trace));
                Json.emit("scenario", name, "error", trace.toString());
            }
        }
        // Kafka's client threads are not daemons; a scenario that leaked one must not hang us.
        System.exit(0);
    }
}
