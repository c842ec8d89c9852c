package io.datamesh.flink.format;

import org.apache.flink.kafka.shaded.org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.flink.kafka.shaded.org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.flink.kafka.shaded.org.apache.kafka.common.header.Header;
import org.apache.flink.kafka.shaded.org.apache.kafka.common.header.internals.RecordHeader;
import org.apache.flink.kafka.shaded.org.apache.kafka.common.serialization.ByteArraySerializer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.io.Serializable;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;

/**
 * Writes poison messages, unchanged, to a dead-letter topic with the error in headers, so the job
 * keeps running and nothing is lost.
 *
 * <p>Each send is synchronous: the record is in the dead-letter topic before the source can
 * checkpoint past it (at-least-once). A failed send is an {@link IOException}: the task fails and
 * Flink retries from the checkpoint. Producers (the Kafka connector's shaded client, configured
 * from the table's {@code properties.*}, so SASL/SSL settings apply too) are shared per cluster
 * within a TaskManager and closed after a minute without poison.
 *
 * <p>Headers: {@code mesh.error}, {@code mesh.error.class}, {@code mesh.source.topic},
 * {@code mesh.schema.id}, {@code mesh.job}, {@code mesh.format}.
 */
final class DeadLetterQueue implements Serializable {
    private static final long serialVersionUID = 1L;
    private static final Logger LOG = LoggerFactory.getLogger(DeadLetterQueue.class);
    private static final long IDLE_MS = 60_000;
    private static final Map<Map<String, String>, Shared> PRODUCERS = new ConcurrentHashMap<>();
    private static final ScheduledExecutorService REAPER =
            Executors.newSingleThreadScheduledExecutor(
                    r -> {
                        Thread t = new Thread(r, "mesh-dlq-reaper");
                        t.setDaemon(true);
                        return t;
                    });

    static {
        REAPER.scheduleWithFixedDelay(DeadLetterQueue::closeIdle, 30, 30, TimeUnit.SECONDS);
    }

    private final String topic;
    private final Map<String, String> producerConfig;
    private final String sourceTopic;
    private final String job;
    private final String format;

    DeadLetterQueue(
            String topic,
            Map<String, String> producerConfig,
            String sourceTopic,
            String job,
            String format) {
        this.topic = topic;
        this.producerConfig = new TreeMap<>(producerConfig);
        this.sourceTopic = sourceTopic;
        this.job = job;
        this.format = format;
    }

    /**
     * The producer settings among a Kafka table's options: {@code properties.bootstrap.servers} and
     * every security setting ({@code security.*}, {@code sasl.*}, {@code ssl.*}).
     */
    static Map<String, String> producerConfig(Map<String, String> tableOptions) {
        Map<String, String> out = new TreeMap<>();
        for (Map.Entry<String, String> e : tableOptions.entrySet()) {
            String key = e.getKey();
            if (!key.startsWith("properties.")) {
                continue;
            }
            String name = key.substring("properties.".length());
            if (name.equals("bootstrap.servers")
                    || name.startsWith("security.")
                    || name.startsWith("sasl.")
                    || name.startsWith("ssl.")) {
                out.put(name, e.getValue());
            }
        }
        return out;
    }

    String topic() {
        return topic;
    }

    /** Write {@code message} with the cause in headers; throws when Kafka does not take it. */
    void send(byte[] message, PoisonMessageException error) throws IOException {
        Shared shared = PRODUCERS.computeIfAbsent(producerConfig, Shared::new);
        try {
            shared.send(record(message, error));
        } catch (Exception e) {
            throw new IOException(
                    "could not write a poison message to dead-letter topic \"" + topic + "\"", e);
        }
        LOG.warn(
                "Poison message from topic {} written to dead-letter topic {}: {}",
                sourceTopic,
                topic,
                error.getMessage());
    }

    /** The dead-letter record of {@code message}: its bytes unchanged, no key, why in headers. */
    ProducerRecord<byte[], byte[]> record(byte[] message, PoisonMessageException error) {
        List<Header> headers = new ArrayList<>();
        header(headers, "mesh.error", String.valueOf(error.getMessage()));
        header(headers, "mesh.error.class", rootCause(error).getClass().getName());
        header(headers, "mesh.source.topic", sourceTopic);
        header(headers, "mesh.schema.id", String.valueOf(error.schemaId()));
        header(headers, "mesh.job", job);
        header(headers, "mesh.format", format);
        return new ProducerRecord<byte[], byte[]>(topic, null, (byte[]) null, message, headers);
    }

    private static void header(List<Header> headers, String key, String value) {
        if (value != null) {
            headers.add(new RecordHeader(key, value.getBytes(StandardCharsets.UTF_8)));
        }
    }

    private static Throwable rootCause(Throwable t) {
        Throwable cause = t;
        while (cause.getCause() != null && cause.getCause() != cause) {
            cause = cause.getCause();
        }
        return cause;
    }

    private static void closeIdle() {
        long now = System.currentTimeMillis();
        for (Shared shared : PRODUCERS.values()) {
            shared.closeIfIdleSince(now - IDLE_MS);
        }
    }

    /** One lazily created producer per cluster configuration. */
    private static final class Shared {
        private final Map<String, String> config;
        private long lastUsed;
        private KafkaProducer<byte[], byte[]> producer;

        Shared(Map<String, String> config) {
            this.config = config;
        }

        /** Sends are rare and synchronous, so one at a time per cluster is enough. */
        synchronized void send(ProducerRecord<byte[], byte[]> record) throws Exception {
            lastUsed = System.currentTimeMillis();
            producer().send(record).get(60, TimeUnit.SECONDS);
        }

        private KafkaProducer<byte[], byte[]> producer() {
            if (producer == null) {
                Properties props = new Properties();
                props.putAll(config);
                props.put("acks", "all");
                props.put("linger.ms", "0");
                props.put("client.id", "mesh-dlq-" + Integer.toHexString(config.hashCode()));
                producer =
                        new KafkaProducer<>(
                                props, new ByteArraySerializer(), new ByteArraySerializer());
            }
            return producer;
        }

        synchronized void closeIfIdleSince(long cutoff) {
            if (producer != null && lastUsed < cutoff) {
                producer.close(java.time.Duration.ofSeconds(5));
                producer = null;
            }
        }
    }
}
