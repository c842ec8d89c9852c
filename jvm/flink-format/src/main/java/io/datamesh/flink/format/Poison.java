package io.datamesh.flink.format;

import org.apache.flink.metrics.Counter;

import java.io.IOException;

/** What a deserializer does with a poison message: dead-letter it, or fail without a queue. */
final class Poison {
    /** Counter of dead-lettered messages on the source operator's metric group. */
    static final String METRIC = "meshDeadLetters";

    private Poison() {}

    static void handle(
            DeadLetterQueue queue, byte[] message, PoisonMessageException error, Counter counter)
            throws IOException {
        if (queue == null) {
            throw new IOException(
                    "poison message and no 'dlq.topic' configured: " + error.getMessage(), error);
        }
        queue.send(message, error);
        if (counter != null) {
            counter.inc();
        }
    }
}
