package io.datamesh.flink.format;

import org.apache.avro.Schema;
import org.apache.flink.api.common.serialization.DeserializationSchema;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.metrics.Counter;
import org.apache.flink.table.data.GenericRowData;
import org.apache.flink.table.data.RowData;
import org.apache.flink.types.RowKind;
import org.apache.flink.util.Collector;

import java.io.IOException;
import java.util.IdentityHashMap;
import java.util.Map;

/**
 * Debezium change envelopes ({@code before}, {@code after}, {@code op}) in Confluent-framed Avro
 * to a changelog of table rows. Adapted from Flink's Apache-licensed
 * {@code DebeziumAvroDeserializationSchema}, reading with the writer schema (see
 * {@link AvroToRow}) and with two changelog modes:
 *
 * <ul>
 *   <li>{@code upsert} (default): c/r/u emit UPDATE_AFTER of {@code after}, d emits DELETE of
 *       {@code before}; needs only the key columns in {@code before}, so it works with PostgreSQL's
 *       default REPLICA IDENTITY. The planner adds a ChangelogNormalize on the primary key.
 *   <li>{@code all}: c/r emit INSERT, u emits UPDATE_BEFORE + UPDATE_AFTER, d emits DELETE; needs
 *       full {@code before} images (REPLICA IDENTITY FULL) and saves the normalizing state.
 * </ul>
 *
 * Tombstones (null values after a delete) and logical-decoding messages ({@code op = m}) are
 * skipped. A truncate ({@code op = t}) cannot be expressed as a keyed changelog: it goes to the
 * dead-letter topic, like any message that does not decode.
 */
public final class DebeziumAvroDeserializationSchema implements DeserializationSchema<RowData> {
    private static final long serialVersionUID = 1L;

    /** How updates are emitted; see the class comment. */
    public enum Mode {
        UPSERT,
        ALL
    }

    private final RegistryRecordDecoder decoder;
    private final AvroToRow converter;
    private final TypeInformation<RowData> producedType;
    private final DeadLetterQueue deadLetters;
    private final Mode mode;
    private transient Counter deadLetterCount;
    private transient Map<Schema, EnvelopeDecoder> plans;

    DebeziumAvroDeserializationSchema(
            RegistryRecordDecoder decoder,
            AvroToRow converter,
            TypeInformation<RowData> producedType,
            DeadLetterQueue deadLetters,
            Mode mode) {
        this.decoder = decoder;
        this.converter = converter;
        this.producedType = producedType;
        this.deadLetters = deadLetters;
        this.mode = mode;
    }

    @Override
    public void open(InitializationContext context) {
        decoder.open();
        plans = new IdentityHashMap<>();
        deadLetterCount = context.getMetricGroup().counter(Poison.METRIC);
    }

    @Override
    public RowData deserialize(byte[] message) {
        throw new UnsupportedOperationException("use deserialize(byte[], Collector)");
    }

    @Override
    public void deserialize(byte[] message, Collector<RowData> out) throws IOException {
        if (message == null || message.length == 0) {
            return; // tombstone after a delete
        }
        if (Heartbeat.isHeartbeat(message)) {
            return; // a heartbeat is forwarded by the job's own branch, never decoded
        }
        int id = RegistrySchemaCoder.schemaId(message);
        GenericRowData first;
        GenericRowData second = null;
        try {
            EnvelopeDecoder.Change change = decode(message, id);
            switch (String.valueOf(change.op)) {
                case "c":
                case "r":
                    first = image(change.after, change, "after", id);
                    first.setRowKind(mode == Mode.ALL ? RowKind.INSERT : RowKind.UPDATE_AFTER);
                    break;
                case "u":
                    if (mode == Mode.ALL) {
                        first = image(change.before, change, "before", id);
                        first.setRowKind(RowKind.UPDATE_BEFORE);
                        second = image(change.after, change, "after", id);
                        second.setRowKind(RowKind.UPDATE_AFTER);
                    } else {
                        first = image(change.after, change, "after", id);
                        first.setRowKind(RowKind.UPDATE_AFTER);
                    }
                    break;
                case "d":
                    first = image(change.before, change, "before", id);
                    first.setRowKind(RowKind.DELETE);
                    break;
                case "m":
                    return;
                case "t":
                    throw new PoisonMessageException(
                            "truncate events cannot be applied to a keyed changelog; the rows"
                                    + " stay until deleted one by one",
                            id);
                case "null":
                    throw new PoisonMessageException(
                            "not a Debezium envelope: no 'op' in schema id " + id, id);
                default:
                    throw new PoisonMessageException("unknown Debezium op '" + change.op + "'", id);
            }
        } catch (PoisonMessageException e) {
            Poison.handle(deadLetters, message, e, deadLetterCount);
            return;
        }
        out.collect(first);
        if (second != null) {
            out.collect(second);
        }
    }

    private EnvelopeDecoder.Change decode(byte[] message, int id) throws IOException {
        Schema writer = decoder.header(message);
        try {
            if (!plans.containsKey(writer)) {
                plans.put(writer, EnvelopeDecoder.compile(writer, converter.rowType(), id));
            }
            EnvelopeDecoder plan = plans.get(writer);
            EnvelopeDecoder.Change change =
                    plan != null
                            ? plan.decode(decoder.body())
                            : EnvelopeDecoder.fromRecord(decoder.generic(writer), converter, id);
            decoder.requireEnd();
            return change;
        } catch (WriterSchemaMismatch e) {
            throw e; // not poison: the task fails, nothing is skipped
        } catch (IOException | RuntimeException e) {
            throw RegistryRecordDecoder.poison(id, writer, e);
        }
    }

    private static GenericRowData image(
            GenericRowData row, EnvelopeDecoder.Change change, String field, int id)
            throws PoisonMessageException {
        if (row == null) {
            throw new PoisonMessageException(
                    "Debezium '" + change.op + "' event without '" + field + "' row image"
                            + ("before".equals(field)
                                    ? " (changelog-mode 'all' needs REPLICA IDENTITY FULL)"
                                    : ""),
                    id);
        }
        return row;
    }

    @Override
    public boolean isEndOfStream(RowData nextElement) {
        return false;
    }

    @Override
    public TypeInformation<RowData> getProducedType() {
        return producedType;
    }
}
