package io.datamesh.flink.format;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.apache.avro.Schema;
import org.apache.avro.generic.GenericData;
import org.apache.avro.generic.GenericDatumWriter;
import org.apache.avro.generic.GenericRecord;
import org.apache.avro.io.BinaryEncoder;
import org.apache.avro.io.EncoderFactory;
import org.apache.flink.api.common.functions.util.ListCollector;
import org.apache.flink.table.data.GenericRowData;
import org.apache.flink.table.data.RowData;
import org.apache.flink.table.data.StringData;
import org.apache.flink.table.types.logical.BigIntType;
import org.apache.flink.table.types.logical.LogicalType;
import org.apache.flink.table.types.logical.RowType;
import org.apache.flink.table.types.logical.VarCharType;
import org.apache.flink.types.RowKind;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;

/** Debezium envelopes (what the CDC connector writes) to changelog rows, in both modes. */
class DebeziumEnvelopeTest {
    static final Schema ENVELOPE =
            new Schema.Parser()
                    .parse("{\"type\":\"record\",\"name\":\"Envelope\",\"namespace\":\"s.public.movies\","
                            + "\"fields\":[{\"name\":\"before\",\"type\":[\"null\",{\"type\":\"record\","
                            + "\"name\":\"Value\",\"fields\":[{\"name\":\"id\",\"type\":\"long\"},"
                            + "{\"name\":\"title\",\"type\":[\"null\",\"string\"],\"default\":null}]}],"
                            + "\"default\":null},{\"name\":\"after\",\"type\":[\"null\",\"Value\"],"
                            + "\"default\":null},{\"name\":\"op\",\"type\":\"string\"},"
                            + "{\"name\":\"ts_ms\",\"type\":[\"null\",\"long\"],\"default\":null}]}");
    static final Schema VALUE = ENVELOPE.getField("before").schema().getTypes().get(1);
    static final RowType TABLE =
            RowType.of(
                    new LogicalType[] {new BigIntType(false), new VarCharType(true, VarCharType.MAX_LENGTH)},
                    new String[] {"id", "title"});

    private RegistryServer registry;
    private int id;

    @BeforeEach
    void start() throws IOException {
        registry = new RegistryServer();
        id = registry.add(ENVELOPE.toString());
    }

    @AfterEach
    void stop() {
        registry.close();
    }

    private DebeziumAvroDeserializationSchema schema(DebeziumAvroDeserializationSchema.Mode mode) {
        DebeziumAvroDeserializationSchema in =
                new DebeziumAvroDeserializationSchema(
                        new RegistryRecordDecoder(new RegistrySchemaCoder.Provider(registry.url(), null, null)),
                        new AvroToRow(TABLE),
                        null,
                        null,
                        mode);
        in.open(new TestContext());
        return in;
    }

    private static GenericRecord value(long key, String title) {
        GenericRecord v = new GenericData.Record(VALUE);
        v.put("id", key);
        v.put("title", title);
        return v;
    }

    private byte[] event(GenericRecord before, GenericRecord after, String op) throws IOException {
        GenericRecord e = new GenericData.Record(ENVELOPE);
        e.put("before", before);
        e.put("after", after);
        e.put("op", op);
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        out.write(new byte[] {0, (byte) (id >>> 24), (byte) (id >>> 16), (byte) (id >>> 8), (byte) id});
        BinaryEncoder enc = EncoderFactory.get().directBinaryEncoder(out, null);
        new GenericDatumWriter<GenericRecord>(ENVELOPE).write(e, enc);
        enc.flush();
        return out.toByteArray();
    }

    private static GenericRowData row(RowKind kind, long key, String title) {
        GenericRowData r = GenericRowData.of(key, StringData.fromString(title));
        r.setRowKind(kind);
        return r;
    }

    private static List<RowData> read(DebeziumAvroDeserializationSchema in, byte[]... messages)
            throws IOException {
        List<RowData> rows = new ArrayList<>();
        for (byte[] m : messages) {
            in.deserialize(m, new ListCollector<>(rows));
        }
        return rows;
    }

    @Test
    void allModeEmitsInsertsBothUpdateImagesAndDeletes() throws IOException {
        List<RowData> rows =
                read(
                        schema(DebeziumAvroDeserializationSchema.Mode.ALL),
                        event(null, value(1, "a"), "c"),
                        event(null, value(2, "s"), "r"),
                        event(value(1, "a"), value(1, "b"), "u"),
                        event(value(1, "b"), null, "d"),
                        new byte[0], // the tombstone after the delete
                        event(null, null, "m"));
        assertEquals(
                List.of(
                        row(RowKind.INSERT, 1, "a"),
                        row(RowKind.INSERT, 2, "s"),
                        row(RowKind.UPDATE_BEFORE, 1, "a"),
                        row(RowKind.UPDATE_AFTER, 1, "b"),
                        row(RowKind.DELETE, 1, "b")),
                rows);
        assertEquals(1, registry.count("GET", "/schemas/ids/" + id));
    }

    @Test
    void upsertModeEmitsOnlyAfterImagesAndKeyedDeletes() throws IOException {
        List<RowData> rows =
                read(
                        schema(DebeziumAvroDeserializationSchema.Mode.UPSERT),
                        event(null, value(1, "a"), "c"),
                        event(null, value(1, "b"), "u"), // default identity: no before image
                        event(value(1, null), null, "d"));
        GenericRowData deleted = GenericRowData.of(1L, null);
        deleted.setRowKind(RowKind.DELETE);
        assertEquals(
                List.of(row(RowKind.UPDATE_AFTER, 1, "a"), row(RowKind.UPDATE_AFTER, 1, "b"), deleted),
                rows);
    }

    @Test
    void anEnvelopeWithoutARequiredColumnFailsTheTaskInsteadOfDeadLettering() {
        RowType withStatus =
                RowType.of(
                        new LogicalType[] {
                            new BigIntType(false),
                            new VarCharType(true, VarCharType.MAX_LENGTH),
                            new VarCharType(false, VarCharType.MAX_LENGTH)
                        },
                        new String[] {"id", "title", "status"});
        DebeziumAvroDeserializationSchema in =
                new DebeziumAvroDeserializationSchema(
                        new RegistryRecordDecoder(new RegistrySchemaCoder.Provider(registry.url(), null, null)),
                        new AvroToRow(withStatus),
                        null,
                        null,
                        DebeziumAvroDeserializationSchema.Mode.UPSERT);
        in.open(new TestContext());
        WriterSchemaMismatch e = assertThrows(WriterSchemaMismatch.class,
                () -> read(in, event(null, value(1, "a"), "c")));
        assertTrue(e.getMessage().contains("has no field 'status' and the column is NOT NULL"), e.getMessage());
    }

    @Test
    void whatCannotBeAChangelogIsPoison() throws IOException {
        DebeziumAvroDeserializationSchema all = schema(DebeziumAvroDeserializationSchema.Mode.ALL);
        IOException truncate =
                assertThrows(IOException.class, () -> read(all, event(null, null, "t")));
        assertTrue(truncate.getMessage().contains("truncate events cannot be applied"), truncate.getMessage());
        byte[] update = event(null, value(1, "b"), "u");
        IOException partial = assertThrows(IOException.class, () -> read(all, update));
        assertTrue(partial.getMessage().contains("'u' event without 'before' row image (changelog-mode"
                + " 'all' needs REPLICA IDENTITY FULL)"), partial.getMessage());
        IOException unknown = assertThrows(IOException.class, () -> read(all, event(null, null, "x")));
        assertTrue(unknown.getMessage().endsWith("unknown Debezium op 'x'"), unknown.getMessage());
    }
}
