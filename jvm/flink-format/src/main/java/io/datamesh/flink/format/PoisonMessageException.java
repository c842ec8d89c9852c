package io.datamesh.flink.format;

import java.io.IOException;

/**
 * A message that can never be decoded, however often it is retried: not Confluent framing, an
 * unknown schema id, a body that does not match its writer schema, or a row that does not fit the
 * table. Such messages go to the dead-letter topic; every other {@link IOException} (registry
 * unreachable, 5xx) is transient and fails the task so Flink restarts it from its checkpoint.
 */
public class PoisonMessageException extends IOException {
    private static final long serialVersionUID = 1L;

    /** Schema id of the message when its header could be read, else -1. */
    private final int schemaId;

    public PoisonMessageException(String message, int schemaId, Throwable cause) {
        super(message, cause);
        this.schemaId = schemaId;
    }

    public PoisonMessageException(String message, int schemaId) {
        this(message, schemaId, null);
    }

    public int schemaId() {
        return schemaId;
    }
}
