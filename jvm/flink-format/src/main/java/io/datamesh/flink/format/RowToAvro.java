package io.datamesh.flink.format;

import org.apache.avro.LogicalType;
import org.apache.avro.LogicalTypes;
import org.apache.avro.Schema;
import org.apache.avro.generic.GenericData;
import org.apache.avro.util.Utf8;
import org.apache.flink.formats.avro.RowDataToAvroConverters;
import org.apache.flink.table.data.ArrayData;
import org.apache.flink.table.data.DecimalData;
import org.apache.flink.table.data.MapData;
import org.apache.flink.table.data.RowData;
import org.apache.flink.table.data.StringData;
import org.apache.flink.table.data.TimestampData;
import org.apache.flink.table.types.logical.ArrayType;
import org.apache.flink.table.types.logical.DecimalType;
import org.apache.flink.table.types.logical.MapType;
import org.apache.flink.table.types.logical.RowType;

import java.math.BigDecimal;
import java.math.RoundingMode;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Converts a table row into a {@link GenericData.Record} of the output schema (fields by
 * position; {@link RowSchemas#check} has matched names and types when the format was planned).
 *
 * <p>Plugs into flink-avro's {@code AvroRowDataSerializationSchema}. Timestamps are written in the
 * unit the schema declares ({@code timestamp-micros} keeps microseconds; flink-avro's converter
 * always writes milliseconds).
 */
final class RowToAvro implements RowDataToAvroConverters.RowDataToAvroConverter {
    private static final long serialVersionUID = 1L;

    private final RowType rowType;
    private transient RowData.FieldGetter[] getters;

    RowToAvro(RowType rowType) {
        this.rowType = rowType;
    }

    @Override
    public Object convert(Schema schema, Object object) {
        if (getters == null) {
            getters = getters(rowType);
        }
        return record(schema, (RowData) object, rowType, getters);
    }

    private static RowData.FieldGetter[] getters(RowType type) {
        RowData.FieldGetter[] out = new RowData.FieldGetter[type.getFieldCount()];
        for (int i = 0; i < out.length; i++) {
            out[i] = RowData.createFieldGetter(type.getTypeAt(i), i);
        }
        return out;
    }

    private static GenericData.Record record(
            Schema schema, RowData row, RowType type, RowData.FieldGetter[] getters) {
        GenericData.Record record = new GenericData.Record(schema);
        List<Schema.Field> fields = schema.getFields();
        for (int i = 0; i < fields.size(); i++) {
            Object value = getters[i].getFieldOrNull(row);
            record.put(i, value(fields.get(i).schema(), value, type.getTypeAt(i), fields.get(i).name()));
        }
        return record;
    }

    private static Object value(
            Schema schema,
            Object value,
            org.apache.flink.table.types.logical.LogicalType type,
            String name) {
        if (schema.getType() == Schema.Type.UNION) {
            schema = branch(schema, value == null, name);
        }
        if (value == null) {
            if (schema.getType() != Schema.Type.NULL) {
                throw new IllegalArgumentException(
                        "column '" + name + "' is null but its Avro type " + schema
                                + " does not allow null");
            }
            return null;
        }
        switch (type.getTypeRoot()) {
            case BOOLEAN:
            case DOUBLE:
            case FLOAT:
                return value;
            case TINYINT:
            case SMALLINT:
            case INTEGER:
            case BIGINT:
                return schema.getType() == Schema.Type.LONG
                        ? ((Number) value).longValue()
                        : (Object) ((Number) value).intValue();
            case CHAR:
            case VARCHAR:
                return schema.getType() == Schema.Type.ENUM
                        ? new GenericData.EnumSymbol(schema, value.toString())
                        : new Utf8(((StringData) value).toBytes());
            case BINARY:
            case VARBINARY:
                return schema.getType() == Schema.Type.FIXED
                        ? new GenericData.Fixed(schema, (byte[]) value)
                        : ByteBuffer.wrap((byte[]) value);
            case DECIMAL:
                return decimal(schema, (DecimalData) value, (DecimalType) type);
            case DATE:
                return value;
            case TIME_WITHOUT_TIME_ZONE:
                return schema.getLogicalType() instanceof LogicalTypes.TimeMicros
                        ? ((Integer) value).longValue() * 1000
                        : value;
            case TIMESTAMP_WITHOUT_TIME_ZONE:
            case TIMESTAMP_WITH_LOCAL_TIME_ZONE:
                return timestamp(schema, (TimestampData) value);
            case ROW:
                return record(schema, (RowData) value, (RowType) type, getters((RowType) type));
            case ARRAY:
                return array(schema, (ArrayData) value, ((ArrayType) type).getElementType(), name);
            case MAP:
                return map(schema, (MapData) value, (MapType) type, name);
            default:
                throw new IllegalArgumentException(
                        "column '" + name + "' has unsupported type " + type);
        }
    }

    private static Schema branch(Schema union, boolean isNull, String name) {
        for (Schema s : union.getTypes()) {
            if ((s.getType() == Schema.Type.NULL) == isNull) {
                return s;
            }
        }
        throw new IllegalArgumentException(
                "column '" + name + "': union " + union + " has no "
                        + (isNull ? "null" : "non-null") + " branch");
    }

    private static Object decimal(Schema schema, DecimalData value, DecimalType type) {
        LogicalType logical = schema.getLogicalType();
        int scale = logical instanceof LogicalTypes.Decimal
                ? ((LogicalTypes.Decimal) logical).getScale()
                : type.getScale();
        BigDecimal number = value.toBigDecimal().setScale(scale, RoundingMode.HALF_UP);
        byte[] unscaled = number.unscaledValue().toByteArray();
        if (schema.getType() == Schema.Type.FIXED) {
            byte[] fixed = new byte[schema.getFixedSize()];
            byte pad = (byte) (number.signum() < 0 ? 0xff : 0);
            int offset = fixed.length - unscaled.length;
            for (int i = 0; i < offset; i++) {
                fixed[i] = pad;
            }
            System.arraycopy(unscaled, 0, fixed, offset, unscaled.length);
            return new GenericData.Fixed(schema, fixed);
        }
        return ByteBuffer.wrap(unscaled);
    }

    private static long timestamp(Schema schema, TimestampData ts) {
        long millis = ts.getMillisecond();
        switch (AvroToRow.TimeUnit.of(schema)) {
            case MICROS:
                return millis * 1000 + ts.getNanoOfMillisecond() / 1000;
            case NANOS:
                return millis * 1_000_000 + ts.getNanoOfMillisecond();
            default:
                return millis;
        }
    }

    private static List<Object> array(
            Schema schema,
            ArrayData array,
            org.apache.flink.table.types.logical.LogicalType elementType,
            String name) {
        ArrayData.ElementGetter getter = ArrayData.createElementGetter(elementType);
        List<Object> out = new ArrayList<>(array.size());
        for (int i = 0; i < array.size(); i++) {
            out.add(value(schema.getElementType(), getter.getElementOrNull(array, i), elementType, name));
        }
        return out;
    }

    private static Map<Utf8, Object> map(Schema schema, MapData map, MapType type, String name) {
        ArrayData keys = map.keyArray();
        ArrayData values = map.valueArray();
        ArrayData.ElementGetter getter = ArrayData.createElementGetter(type.getValueType());
        Map<Utf8, Object> out = new HashMap<>();
        for (int i = 0; i < map.size(); i++) {
            out.put(
                    new Utf8(keys.getString(i).toBytes()),
                    value(schema.getValueType(), getter.getElementOrNull(values, i), type.getValueType(), name));
        }
        return out;
    }
}
