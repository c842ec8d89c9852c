package io.datamesh.flink.format;

import org.apache.avro.LogicalType;
import org.apache.avro.LogicalTypes;
import org.apache.avro.Schema;
import org.apache.avro.generic.GenericData;
import org.apache.avro.generic.GenericFixed;
import org.apache.avro.generic.GenericRecord;
import org.apache.flink.table.data.DecimalData;
import org.apache.flink.table.data.GenericArrayData;
import org.apache.flink.table.data.GenericMapData;
import org.apache.flink.table.data.GenericRowData;
import org.apache.flink.table.data.StringData;
import org.apache.flink.table.data.TimestampData;
import org.apache.flink.table.types.logical.ArrayType;
import org.apache.flink.table.types.logical.DecimalType;
import org.apache.flink.table.types.logical.MapType;
import org.apache.flink.table.types.logical.MultisetType;
import org.apache.flink.table.types.logical.RowType;

import java.io.Serializable;
import java.math.BigDecimal;
import java.math.BigInteger;
import java.nio.ByteBuffer;
import java.time.Instant;
import java.time.LocalDate;
import java.util.Collection;
import java.util.HashMap;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;

/**
 * Converts a record decoded with its own writer schema into a {@link GenericRowData} of the
 * table's row type, matching fields by name.
 *
 * <p>Reading with the writer schema (instead of resolving it against a reader schema derived from
 * the table) lets upstream add fields without a redeploy, and lets logical types be honoured as
 * the writer declared them: flink-avro's own converters read every {@code long} timestamp as
 * milliseconds, which corrupts {@code timestamp-micros} (Debezium's and PostgreSQL's precision).
 * Fields the table does not know are ignored; a table column missing from the writer schema is
 * null, or a {@link WriterSchemaMismatch} (the task fails, nothing is dead-lettered) when the
 * column is NOT NULL.
 */
final class AvroToRow implements Serializable {
    private static final long serialVersionUID = 1L;

    private final RowType rowType;
    private transient Map<Schema, int[]> positions;

    AvroToRow(RowType rowType) {
        this.rowType = rowType;
    }

    RowType rowType() {
        return rowType;
    }

    /** The row for {@code record}; {@code schemaId} only labels errors. */
    GenericRowData convert(GenericRecord record, int schemaId) throws PoisonMessageException {
        try {
            return convertRow(record, rowType, positionsOf(record.getSchema(), schemaId));
        } catch (PoisonMessageException | WriterSchemaMismatch e) {
            throw e;
        } catch (RuntimeException e) {
            throw new PoisonMessageException(
                    "record of schema id " + schemaId + " does not fit the table: " + e, schemaId, e);
        }
    }

    private int[] positionsOf(Schema writer, int schemaId) throws PoisonMessageException {
        if (positions == null) {
            positions = new IdentityHashMap<>();
        }
        int[] cached = positions.get(writer);
        if (cached == null) {
            cached = fieldPositions(writer, rowType, schemaId);
            positions.put(writer, cached);
        }
        return cached;
    }

    static int[] fieldPositions(Schema writer, RowType type, int schemaId)
            throws PoisonMessageException {
        List<RowType.RowField> fields = type.getFields();
        int[] pos = new int[fields.size()];
        for (int i = 0; i < pos.length; i++) {
            Schema.Field f = writer.getField(fields.get(i).getName());
            pos[i] = f == null ? -1 : f.pos();
            if (f == null && !fields.get(i).getType().isNullable()) {
                throw new WriterSchemaMismatch(
                        "writer schema " + writer.getFullName() + " (id " + schemaId
                                + ") has no field '" + fields.get(i).getName()
                                + "' and the column is NOT NULL: upstream dropped a column this"
                                + " job requires; the task fails at this message, skipping"
                                + " nothing, until the pipeline is paused and its declaration"
                                + " updated (check upstream_schema)",
                        schemaId);
            }
        }
        return pos;
    }

    private static GenericRowData convertRow(GenericRecord record, RowType type, int[] pos) {
        Schema schema = record.getSchema();
        List<RowType.RowField> fields = type.getFields();
        GenericRowData row = new GenericRowData(fields.size());
        for (int i = 0; i < pos.length; i++) {
            if (pos[i] >= 0) {
                Object value = record.get(pos[i]);
                Schema fieldSchema = schema.getFields().get(pos[i]).schema();
                row.setField(i, convert(value, fieldSchema, fields.get(i).getType()));
            }
        }
        return row;
    }

    static Object convert(
            Object value, Schema schema, org.apache.flink.table.types.logical.LogicalType type) {
        if (value == null) {
            return null;
        }
        if (schema.getType() == Schema.Type.UNION) {
            schema = schema.getTypes().get(GenericData.get().resolveUnion(schema, value));
        }
        switch (type.getTypeRoot()) {
            case BOOLEAN:
                return (Boolean) value;
            case TINYINT:
                return ((Number) value).byteValue();
            case SMALLINT:
                return ((Number) value).shortValue();
            case INTEGER:
                return ((Number) value).intValue();
            case BIGINT:
                return ((Number) value).longValue();
            case FLOAT:
                return ((Number) value).floatValue();
            case DOUBLE:
                return ((Number) value).doubleValue();
            case CHAR:
            case VARCHAR:
                return StringData.fromString(value.toString());
            case BINARY:
            case VARBINARY:
                return bytes(value);
            case DECIMAL:
                return decimal(value, schema, (DecimalType) type);
            case DATE:
                return value instanceof LocalDate
                        ? (int) ((LocalDate) value).toEpochDay()
                        : ((Number) value).intValue();
            case TIME_WITHOUT_TIME_ZONE:
                return timeMillis(value, schema);
            case TIMESTAMP_WITHOUT_TIME_ZONE:
            case TIMESTAMP_WITH_LOCAL_TIME_ZONE:
                return timestamp(value, schema);
            case ROW:
                return nestedRow((GenericRecord) value, (RowType) type);
            case ARRAY:
                return array((Collection<?>) value, schema, ((ArrayType) type).getElementType());
            case MAP:
                return map((Map<?, ?>) value, schema, (MapType) type);
            case MULTISET:
                return multiset((Map<?, ?>) value, schema, (MultisetType) type);
            default:
                throw new IllegalArgumentException("unsupported column type " + type);
        }
    }

    private static GenericRowData nestedRow(GenericRecord record, RowType type) {
        Schema schema = record.getSchema();
        int[] pos = new int[type.getFieldCount()];
        for (int i = 0; i < pos.length; i++) {
            Schema.Field f = schema.getField(type.getFields().get(i).getName());
            pos[i] = f == null ? -1 : f.pos();
        }
        return convertRow(record, type, pos);
    }

    private static byte[] bytes(Object value) {
        if (value instanceof GenericFixed) {
            return ((GenericFixed) value).bytes();
        }
        ByteBuffer buf = ((ByteBuffer) value).duplicate();
        byte[] out = new byte[buf.remaining()];
        buf.get(out);
        return out;
    }

    private static DecimalData decimal(Object value, Schema schema, DecimalType type) {
        BigDecimal number;
        LogicalType logical = schema.getLogicalType();
        if (logical instanceof LogicalTypes.Decimal) {
            int scale = ((LogicalTypes.Decimal) logical).getScale();
            number = new BigDecimal(new BigInteger(bytes(value)), scale);
        } else if (value instanceof CharSequence) {
            number = new BigDecimal(value.toString());
        } else {
            number = new BigDecimal(value.toString());
        }
        return DecimalData.fromBigDecimal(number, type.getPrecision(), type.getScale());
    }

    private static int timeMillis(Object value, Schema schema) {
        if (schema.getLogicalType() instanceof LogicalTypes.TimeMicros) {
            return (int) (((Number) value).longValue() / 1000);
        }
        return ((Number) value).intValue();
    }

    private static TimestampData timestamp(Object value, Schema schema) {
        if (value instanceof CharSequence) { // Debezium ZonedTimestamp: ISO-8601 text
            return TimestampData.fromInstant(Instant.parse(value.toString()));
        }
        long v = ((Number) value).longValue();
        switch (TimeUnit.of(schema)) {
            case MICROS:
                return TimestampData.fromEpochMillis(
                        Math.floorDiv(v, 1000), (int) Math.floorMod(v, 1000) * 1000);
            case NANOS:
                return TimestampData.fromEpochMillis(
                        Math.floorDiv(v, 1_000_000), (int) Math.floorMod(v, 1_000_000));
            default:
                return TimestampData.fromEpochMillis(v);
        }
    }

    private static GenericArrayData array(
            Collection<?> values,
            Schema schema,
            org.apache.flink.table.types.logical.LogicalType elementType) {
        Object[] out = new Object[values.size()];
        int i = 0;
        for (Object v : values) {
            out[i++] = convert(v, schema.getElementType(), elementType);
        }
        return new GenericArrayData(out);
    }

    private static GenericMapData map(Map<?, ?> values, Schema schema, MapType type) {
        Map<Object, Object> out = new HashMap<>();
        for (Map.Entry<?, ?> e : values.entrySet()) {
            out.put(
                    StringData.fromString(e.getKey().toString()),
                    convert(e.getValue(), schema.getValueType(), type.getValueType()));
        }
        return new GenericMapData(out);
    }

    private static GenericMapData multiset(Map<?, ?> values, Schema schema, MultisetType type) {
        Map<Object, Object> out = new HashMap<>();
        for (Map.Entry<?, ?> e : values.entrySet()) {
            out.put(StringData.fromString(e.getKey().toString()), ((Number) e.getValue()).intValue());
        }
        return new GenericMapData(out);
    }

    /** Unit of a {@code long} timestamp: the Avro logical type, else Debezium's connect.name. */
    enum TimeUnit {
        MILLIS,
        MICROS,
        NANOS;

        static TimeUnit of(Schema schema) {
            LogicalType logical = schema.getLogicalType();
            if (logical instanceof LogicalTypes.TimestampMicros
                    || logical instanceof LogicalTypes.LocalTimestampMicros) {
                return MICROS;
            }
            if (logical instanceof LogicalTypes.TimestampMillis
                    || logical instanceof LogicalTypes.LocalTimestampMillis) {
                return MILLIS;
            }
            Object connectName = schema.getObjectProp("connect.name");
            if ("io.debezium.time.MicroTimestamp".equals(connectName)) {
                return MICROS;
            }
            if ("io.debezium.time.NanoTimestamp".equals(connectName)) {
                return NANOS;
            }
            return MILLIS;
        }
    }
}
