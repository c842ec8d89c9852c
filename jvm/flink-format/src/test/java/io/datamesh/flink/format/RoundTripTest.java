package io.datamesh.flink.format;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;

import org.apache.avro.Schema;
import org.apache.avro.generic.GenericDatumReader;
import org.apache.avro.generic.GenericDatumWriter;
import org.apache.avro.generic.GenericRecord;
import org.apache.avro.io.BinaryEncoder;
import org.apache.avro.io.DecoderFactory;
import org.apache.avro.io.EncoderFactory;
import org.apache.avro.util.Utf8;
import org.apache.flink.table.data.DecimalData;
import org.apache.flink.table.data.GenericArrayData;
import org.apache.flink.table.data.GenericRowData;
import org.apache.flink.table.data.RowData;
import org.apache.flink.table.data.StringData;
import org.apache.flink.table.data.TimestampData;
import org.apache.flink.table.types.logical.ArrayType;
import org.apache.flink.table.types.logical.BigIntType;
import org.apache.flink.table.types.logical.BooleanType;
import org.apache.flink.table.types.logical.DateType;
import org.apache.flink.table.types.logical.DecimalType;
import org.apache.flink.table.types.logical.DoubleType;
import org.apache.flink.table.types.logical.LogicalType;
import org.apache.flink.table.types.logical.RowType;
import org.apache.flink.table.types.logical.TimestampType;
import org.apache.flink.table.types.logical.VarBinaryType;
import org.apache.flink.table.types.logical.VarCharType;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.math.BigDecimal;
import java.nio.ByteBuffer;
import java.time.LocalDate;
import java.time.LocalDateTime;
import java.util.Arrays;

/**
 * Rows through the serializer and back through the deserializer (Confluent framing against a
 * tiny registry), and each direct path checked against the generic one and plain Avro.
 */
class RoundTripTest {
    static final RowType ROW =
            RowType.of(
                    new LogicalType[] {
                        new BigIntType(false),
                        new VarCharType(true, VarCharType.MAX_LENGTH),
                        new DecimalType(10, 2),
                        new TimestampType(6),
                        new DateType(),
                        new BooleanType(),
                        new DoubleType(),
                        new VarBinaryType(VarBinaryType.MAX_LENGTH),
                    },
                    new String[] {"id", "name", "price", "at", "day", "flag", "score", "payload"});
    static final LocalDateTime AT = LocalDateTime.of(2024, 2, 29, 13, 14, 15, 123_456_000);

    private RegistryServer registry;

    @BeforeEach
    void start() throws IOException {
        registry = new RegistryServer();
    }

    @AfterEach
    void stop() {
        registry.close();
    }

    static GenericRowData row(long id, String name) {
        return GenericRowData.of(
                id,
                name == null ? null : StringData.fromString(name),
                DecimalData.fromBigDecimal(new BigDecimal("-1234.50"), 10, 2),
                TimestampData.fromLocalDateTime(AT),
                (int) LocalDate.of(2024, 2, 29).toEpochDay(),
                true,
                0.25,
                new byte[] {0, -1, 16});
    }

    private MeshAvroSerializationSchema serializer(RowType type, Schema schema) throws Exception {
        MeshAvroSerializationSchema out =
                new MeshAvroSerializationSchema(
                        type, schema, new RegistrySchemaCoder.Provider(registry.url(), "t-value", null));
        out.open(new TestContext());
        return out;
    }

    private MeshAvroDeserializationSchema deserializer(RowType type) throws Exception {
        MeshAvroDeserializationSchema in =
                new MeshAvroDeserializationSchema(
                        new RegistryRecordDecoder(
                                new RegistrySchemaCoder.Provider(registry.url(), null, null)),
                        new AvroToRow(type),
                        null,
                        null);
        in.open(new TestContext());
        return in;
    }

    @Test
    void rowsSurviveTheRoundTripWithTheirExactValues() throws Exception {
        Schema schema = RowSchemas.derive(ROW, "t.Value");
        MeshAvroSerializationSchema out = serializer(ROW, schema);
        MeshAvroDeserializationSchema in = deserializer(ROW);
        for (GenericRowData row : new GenericRowData[] {row(7, "Alien"), row(-8, null)}) {
            byte[] bytes = out.serialize(row);
            assertEquals(0, bytes[0]);
            assertEquals(100, RegistrySchemaCoder.schemaId(bytes)); // the registry's first id
            RowData back = in.deserialize(bytes);
            assertEquals(row, back);
        }
        assertEquals(1, registry.count("POST", "/subjects/t-value/versions"));
    }

    @Test
    void theBodyIsPlainAvroWithMicrosecondTimestamps() throws Exception {
        Schema schema = RowSchemas.derive(ROW, "t.Value");
        byte[] bytes = serializer(ROW, schema).serialize(row(7, "Alien"));
        GenericRecord record =
                new GenericDatumReader<GenericRecord>(schema)
                        .read(null, DecoderFactory.get().binaryDecoder(bytes, 5, bytes.length - 5, null));
        assertEquals(7L, record.get("id"));
        assertEquals(new Utf8("Alien"), record.get("name"));
        assertEquals(ByteBuffer.wrap(new BigDecimal("-1234.50").unscaledValue().toByteArray()), record.get("price"));
        long micros = AT.toEpochSecond(java.time.ZoneOffset.UTC) * 1_000_000 + 123_456;
        assertEquals(micros, record.get("at")); // timestamp-micros keeps the microseconds
        assertEquals((int) LocalDate.of(2024, 2, 29).toEpochDay(), record.get("day"));
        assertEquals(ByteBuffer.wrap(new byte[] {0, -1, 16}), record.get("payload"));
    }

    @Test
    void theDirectEncoderWritesWhatTheGenericPathWrites() throws IOException {
        Schema schema = RowSchemas.derive(ROW, "t.Value");
        DirectRowEncoder direct = DirectRowEncoder.compile(ROW, schema);
        assertNotNull(direct);
        for (GenericRowData row : new GenericRowData[] {row(1, "x"), row(2, null)}) {
            ByteArrayOutputStream fast = new ByteArrayOutputStream();
            BinaryEncoder enc = EncoderFactory.get().directBinaryEncoder(fast, null);
            direct.encode(row, enc);
            enc.flush();
            ByteArrayOutputStream generic = new ByteArrayOutputStream();
            BinaryEncoder genc = EncoderFactory.get().directBinaryEncoder(generic, null);
            new GenericDatumWriter<Object>(schema).write(new RowToAvro(ROW).convert(schema, row), genc);
            genc.flush();
            assertArrayEquals(generic.toByteArray(), fast.toByteArray());
        }
    }

    @Test
    void theDirectDecoderReadsWhatTheGenericPathReads() throws IOException {
        Schema schema = RowSchemas.derive(ROW, "t.Value");
        ByteArrayOutputStream body = new ByteArrayOutputStream();
        BinaryEncoder enc = EncoderFactory.get().directBinaryEncoder(body, null);
        new GenericDatumWriter<Object>(schema).write(new RowToAvro(ROW).convert(schema, row(3, "y")), enc);
        enc.flush();
        byte[] bytes = body.toByteArray();
        DirectRowDecoder direct = DirectRowDecoder.compile(schema, ROW);
        assertNotNull(direct);
        GenericRowData fast = direct.decode(DecoderFactory.get().binaryDecoder(bytes, null));
        GenericRecord record =
                new GenericDatumReader<GenericRecord>(schema)
                        .read(null, DecoderFactory.get().binaryDecoder(bytes, null));
        assertEquals(new AvroToRow(ROW).convert(record, 1), fast);
        assertEquals(row(3, "y"), fast);
    }

    @Test
    void nestedTypesTakeTheGenericPathBothWays() throws Exception {
        RowType type =
                RowType.of(
                        new LogicalType[] {
                            new BigIntType(false), new ArrayType(new VarCharType(true, VarCharType.MAX_LENGTH))
                        },
                        new String[] {"id", "tags"});
        Schema schema = RowSchemas.derive(type, "t.Value");
        assertNull(DirectRowEncoder.compile(type, schema));
        assertNull(DirectRowDecoder.compile(schema, type));
        GenericRowData row =
                GenericRowData.of(
                        5L,
                        new GenericArrayData(
                                new Object[] {StringData.fromString("a"), null, StringData.fromString("c")}));
        byte[] bytes = serializer(type, schema).serialize(row);
        assertEquals(100, RegistrySchemaCoder.schemaId(bytes));
        RowData back = deserializer(type).deserialize(bytes);
        assertEquals(5L, back.getLong(0));
        GenericArrayData tags = (GenericArrayData) back.getArray(1);
        assertEquals(
                Arrays.asList(StringData.fromString("a"), null, StringData.fromString("c")),
                Arrays.asList(tags.toObjectArray()));
    }

    @Test
    void aWriterWithMoreFieldsAndFewerNullableOnesIsReadByName() throws Exception {
        Schema writer =
                new Schema.Parser()
                        .parse("{\"type\":\"record\",\"name\":\"W\",\"fields\":["
                                + "{\"name\":\"extra\",\"type\":\"string\"},"
                                + "{\"name\":\"id\",\"type\":\"long\"}]}");
        int id = registry.add(writer.toString());
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        out.write(new byte[] {0, 0, 0, 0, (byte) id});
        BinaryEncoder enc = EncoderFactory.get().directBinaryEncoder(out, null);
        enc.writeString("ignored by the table");
        enc.writeLong(42);
        enc.flush();
        RowType table =
                RowType.of(
                        new LogicalType[] {new VarCharType(true, 10), new BigIntType(false)},
                        new String[] {"name", "id"});
        RowData row = deserializer(table).deserialize(out.toByteArray());
        assertEquals(GenericRowData.of(null, 42L), row);
    }
}
