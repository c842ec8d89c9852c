package io.datamesh.flink.format;

import org.apache.avro.LogicalType;
import org.apache.avro.LogicalTypes;
import org.apache.avro.Schema;
import org.apache.avro.io.Encoder;
import org.apache.flink.table.data.DecimalData;
import org.apache.flink.table.data.RowData;
import org.apache.flink.table.data.TimestampData;
import org.apache.flink.table.types.logical.DecimalType;
import org.apache.flink.table.types.logical.LocalZonedTimestampType;
import org.apache.flink.table.types.logical.RowType;
import org.apache.flink.table.types.logical.TimestampType;

import java.io.IOException;
import java.math.BigDecimal;
import java.math.RoundingMode;
import java.util.List;

/**
 * Encodes a table row straight into Avro binary for the output schema (fields by position, as
 * {@link RowSchemas#check} matched them), without building a {@code GenericRecord}; strings go
 * out as their UTF-8 bytes. {@link #compile} returns null for shapes it does not cover (nested
 * rows, arrays, maps), which are then written through flink-avro's generic path.
 */
final class DirectRowEncoder {
    private final Writer[] writers;

    private DirectRowEncoder(Writer[] writers) {
        this.writers = writers;
    }

    static DirectRowEncoder compile(RowType type, Schema schema) {
        List<Schema.Field> fields = schema.getFields();
        Writer[] writers = new Writer[fields.size()];
        for (int i = 0; i < writers.length; i++) {
            writers[i] = writer(fields.get(i).schema(), type.getTypeAt(i), i, fields.get(i).name());
            if (writers[i] == null) {
                return null;
            }
        }
        return new DirectRowEncoder(writers);
    }

    void encode(RowData row, Encoder out) throws IOException {
        for (Writer w : writers) {
            w.write(row, out);
        }
    }

    /** Writes field {@code pos} of a row. */
    interface Writer {
        void write(RowData row, Encoder out) throws IOException;
    }

    private static Writer writer(
            Schema s, org.apache.flink.table.types.logical.LogicalType type, int pos, String name) {
        if (s.getType() != Schema.Type.UNION) {
            Writer value = value(s, type, pos);
            if (value == null) {
                return null;
            }
            return (row, out) -> {
                if (row.isNullAt(pos)) {
                    throw new IllegalArgumentException(
                            "column '" + name + "' is null but its Avro type " + s
                                    + " does not allow null");
                }
                value.write(row, out);
            };
        }
        List<Schema> branches = s.getTypes();
        int nullIndex = -1;
        int valueIndex = -1;
        for (int b = 0; b < branches.size(); b++) {
            if (branches.get(b).getType() == Schema.Type.NULL) {
                nullIndex = b;
            } else if (valueIndex < 0) {
                valueIndex = b;
            }
        }
        if (valueIndex < 0 || branches.size() > 2) {
            return null;
        }
        Writer value = value(branches.get(valueIndex), type, pos);
        if (value == null) {
            return null;
        }
        int nulls = nullIndex;
        int values = valueIndex;
        return (row, out) -> {
            if (row.isNullAt(pos)) {
                if (nulls < 0) {
                    throw new IllegalArgumentException("column '" + name + "' is null");
                }
                out.writeIndex(nulls);
                out.writeNull();
            } else {
                out.writeIndex(values);
                value.write(row, out);
            }
        };
    }

    private static Writer value(
            Schema s, org.apache.flink.table.types.logical.LogicalType type, int pos) {
        Schema.Type w = s.getType();
        switch (type.getTypeRoot()) {
            case BOOLEAN:
                return w == Schema.Type.BOOLEAN ? (r, o) -> o.writeBoolean(r.getBoolean(pos)) : null;
            case TINYINT:
                return integral(w, r -> r.getByte(pos));
            case SMALLINT:
                return integral(w, r -> r.getShort(pos));
            case INTEGER:
            case DATE:
                return integral(w, r -> r.getInt(pos));
            case BIGINT:
                return w == Schema.Type.LONG ? (r, o) -> o.writeLong(r.getLong(pos)) : null;
            case FLOAT:
                if (w == Schema.Type.DOUBLE) {
                    return (r, o) -> o.writeDouble(r.getFloat(pos));
                }
                return w == Schema.Type.FLOAT ? (r, o) -> o.writeFloat(r.getFloat(pos)) : null;
            case DOUBLE:
                return w == Schema.Type.DOUBLE ? (r, o) -> o.writeDouble(r.getDouble(pos)) : null;
            case CHAR:
            case VARCHAR:
                if (w == Schema.Type.STRING) {
                    return (r, o) -> o.writeBytes(r.getString(pos).toBytes());
                }
                if (w == Schema.Type.ENUM) {
                    return (r, o) -> o.writeEnum(s.getEnumOrdinal(r.getString(pos).toString()));
                }
                return null;
            case BINARY:
            case VARBINARY:
                if (w == Schema.Type.BYTES) {
                    return (r, o) -> o.writeBytes(r.getBinary(pos));
                }
                return w == Schema.Type.FIXED ? (r, o) -> o.writeFixed(r.getBinary(pos)) : null;
            case DECIMAL:
                return decimal(s, (DecimalType) type, pos);
            case TIME_WITHOUT_TIME_ZONE:
                if (w == Schema.Type.LONG) {
                    return (r, o) -> o.writeLong(r.getInt(pos) * 1000L);
                }
                return w == Schema.Type.INT ? (r, o) -> o.writeInt(r.getInt(pos)) : null;
            case TIMESTAMP_WITHOUT_TIME_ZONE:
                return timestamp(s, pos, ((TimestampType) type).getPrecision());
            case TIMESTAMP_WITH_LOCAL_TIME_ZONE:
                return timestamp(s, pos, ((LocalZonedTimestampType) type).getPrecision());
            default:
                return null;
        }
    }

    interface IntGetter {
        int get(RowData row);
    }

    private static Writer integral(Schema.Type w, IntGetter getter) {
        if (w == Schema.Type.INT) {
            return (r, o) -> o.writeInt(getter.get(r));
        }
        return w == Schema.Type.LONG ? (r, o) -> o.writeLong(getter.get(r)) : null;
    }

    private static Writer decimal(Schema s, DecimalType type, int pos) {
        LogicalType logical = s.getLogicalType();
        if (s.getType() != Schema.Type.BYTES || !(logical instanceof LogicalTypes.Decimal)) {
            return null;
        }
        int scale = ((LogicalTypes.Decimal) logical).getScale();
        int precision = type.getPrecision();
        int tableScale = type.getScale();
        return (r, o) -> {
            DecimalData d = r.getDecimal(pos, precision, tableScale);
            if (scale == tableScale) {
                o.writeBytes(d.toUnscaledBytes());
            } else {
                BigDecimal v = d.toBigDecimal().setScale(scale, RoundingMode.HALF_UP);
                o.writeBytes(v.unscaledValue().toByteArray());
            }
        };
    }

    private static Writer timestamp(Schema s, int pos, int precision) {
        if (s.getType() != Schema.Type.LONG) {
            return null;
        }
        switch (AvroToRow.TimeUnit.of(s)) {
            case MICROS:
                return (r, o) -> {
                    TimestampData ts = r.getTimestamp(pos, precision);
                    o.writeLong(ts.getMillisecond() * 1000 + ts.getNanoOfMillisecond() / 1000);
                };
            case NANOS:
                return (r, o) -> {
                    TimestampData ts = r.getTimestamp(pos, precision);
                    o.writeLong(ts.getMillisecond() * 1_000_000 + ts.getNanoOfMillisecond());
                };
            default:
                return (r, o) -> o.writeLong(r.getTimestamp(pos, precision).getMillisecond());
        }
    }
}
