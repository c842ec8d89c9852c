package io.datamesh.flink.format;

/**
 * A registered writer schema cannot fill a NOT NULL column of the table: upstream removed (or
 * made optional) a column this job reads as required. Not poison — every message of that schema
 * would go to the dead-letter topic and be lost to the job — so the task fails instead, at the
 * first such message, with nothing skipped: the platform's schema controller pauses the pipeline
 * (check {@code upstream_schema}) and resumes it from its last state once the declaration is
 * updated or the change reverted.
 */
public class WriterSchemaMismatch extends RuntimeException {
    private static final long serialVersionUID = 1L;

    private final int schemaId;

    WriterSchemaMismatch(String message, int schemaId) {
        super(message);
        this.schemaId = schemaId;
    }

    /** The writer schema's registry id. */
    public int schemaId() {
        return schemaId;
    }
}
