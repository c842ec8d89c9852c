package io.datamesh.flink.format;

import org.apache.avro.LogicalType;
import org.apache.avro.LogicalTypes;
import org.apache.avro.Schema;
import org.apache.avro.generic.GenericDatumReader;
import org.apache.avro.io.Decoder;
import org.apache.flink.table.data.DecimalData;
import org.apache.flink.table.data.GenericRowData;
import org.apache.flink.table.data.StringData;
import org.apache.flink.table.data.TimestampData;
import org.apache.flink.table.types.logical.DecimalType;
import org.apache.flink.table.types.logical.RowType;

import java.io.IOException;
import java.math.BigDecimal;
import java.math.BigInteger;
import java.nio.ByteBuffer;
import java.util.List;

/**
 * Decodes an Avro binary record straight into a {@link GenericRowData}: a plan compiled once per
 * (writer schema, row type) reads the columns the table needs and skips the rest, without
 * building a {@code GenericRecord} or decoding strings into Java strings (UTF-8 bytes become
 * {@link StringData} as they are). Same semantics as {@link AvroToRow}, several times faster;
 * {@link #compile} returns null for shapes it does not cover (nested rows, arrays, maps), which
 * then take the generic path.
 */
final class DirectRowDecoder {
    private final int arity;
    private final Step[] steps;

    private DirectRowDecoder(int arity, Step[] steps) {
        this.arity = arity;
        this.steps = steps;
    }

    /** The plan for records of {@code writer} read as {@code type}, or null if not covered. */
    static DirectRowDecoder compile(Schema writer, RowType type) {
        List<Schema.Field> fields = writer.getFields();
        Step[] steps = new Step[fields.size()];
        for (int w = 0; w < steps.length; w++) {
            Schema.Field field = fields.get(w);
            int pos = type.getFieldNames().indexOf(field.name());
            if (pos < 0) {
                steps[w] = new Step(-1, null, field.schema());
                continue;
            }
            Reader reader = reader(field.schema(), type.getTypeAt(pos));
            if (reader == null) {
                return null;
            }
            steps[w] = new Step(pos, reader, field.schema());
        }
        return new DirectRowDecoder(type.getFieldCount(), steps);
    }

    GenericRowData decode(Decoder in) throws IOException {
        GenericRowData row = new GenericRowData(arity);
        for (Step step : steps) {
            if (step.pos < 0) {
                GenericDatumReader.skip(step.schema, in);
            } else {
                row.setField(step.pos, step.reader.read(in));
            }
        }
        return row;
    }

    private static final class Step {
        final int pos;
        final Reader reader;
        final Schema schema;

        Step(int pos, Reader reader, Schema schema) {
            this.pos = pos;
            this.reader = reader;
            this.schema = schema;
        }
    }

    /** Reads one value of a writer schema as a table value. */
    interface Reader {
        Object read(Decoder in) throws IOException;
    }

    static Reader reader(Schema schema, org.apache.flink.table.types.logical.LogicalType type) {
        if (schema.getType() == Schema.Type.UNION) {
            List<Schema> branches = schema.getTypes();
            Reader[] readers = new Reader[branches.size()];
            for (int i = 0; i < readers.length; i++) {
                if (branches.get(i).getType() != Schema.Type.NULL) {
                    readers[i] = reader(branches.get(i), type);
                    if (readers[i] == null) {
                        return null;
                    }
                }
            }
            return in -> {
                Reader r = readers[in.readIndex()];
                if (r == null) {
                    in.readNull();
                    return null;
                }
                return r.read(in);
            };
        }
        return nonNull(schema, type);
    }

    private static Reader nonNull(Schema s, org.apache.flink.table.types.logical.LogicalType type) {
        Schema.Type w = s.getType();
        switch (type.getTypeRoot()) {
            case BOOLEAN:
                return w == Schema.Type.BOOLEAN ? Decoder::readBoolean : null;
            case TINYINT:
                return w == Schema.Type.INT ? in -> (byte) in.readInt() : null;
            case SMALLINT:
                return w == Schema.Type.INT ? in -> (short) in.readInt() : null;
            case INTEGER:
            case DATE:
                return w == Schema.Type.INT ? Decoder::readInt : null;
            case BIGINT:
                if (w == Schema.Type.INT) {
                    return in -> (long) in.readInt();
                }
                return w == Schema.Type.LONG ? Decoder::readLong : null;
            case FLOAT:
                return w == Schema.Type.FLOAT ? Decoder::readFloat : null;
            case DOUBLE:
                return number(w);
            case CHAR:
            case VARCHAR:
                return string(s);
            case BINARY:
            case VARBINARY:
                return bytes(s);
            case DECIMAL:
                return decimal(s, (DecimalType) type);
            case TIME_WITHOUT_TIME_ZONE:
                if (w == Schema.Type.INT) {
                    return Decoder::readInt;
                }
                return w == Schema.Type.LONG ? in -> (int) (in.readLong() / 1000) : null;
            case TIMESTAMP_WITHOUT_TIME_ZONE:
            case TIMESTAMP_WITH_LOCAL_TIME_ZONE:
                return w == Schema.Type.LONG ? timestamp(AvroToRow.TimeUnit.of(s)) : null;
            default:
                return null;
        }
    }

    private static Reader number(Schema.Type w) {
        switch (w) {
            case INT:
                return in -> (double) in.readInt();
            case LONG:
                return in -> (double) in.readLong();
            case FLOAT:
                return in -> (double) in.readFloat();
            case DOUBLE:
                return Decoder::readDouble;
            default:
                return null;
        }
    }

    private static Reader string(Schema s) {
        if (s.getType() == Schema.Type.STRING) {
            return in -> StringData.fromBytes(array(in.readBytes(null)));
        }
        if (s.getType() == Schema.Type.ENUM) {
            StringData[] symbols =
                    s.getEnumSymbols().stream().map(StringData::fromString).toArray(StringData[]::new);
            return in -> symbols[in.readEnum()];
        }
        return null;
    }

    private static Reader bytes(Schema s) {
        if (s.getType() == Schema.Type.BYTES) {
            return in -> array(in.readBytes(null));
        }
        if (s.getType() == Schema.Type.FIXED) {
            int size = s.getFixedSize();
            return in -> {
                byte[] out = new byte[size];
                in.readFixed(out);
                return out;
            };
        }
        return null;
    }

    private static Reader decimal(Schema s, DecimalType type) {
        LogicalType logical = s.getLogicalType();
        if (!(logical instanceof LogicalTypes.Decimal)) {
            return null;
        }
        int scale = ((LogicalTypes.Decimal) logical).getScale();
        Reader raw = bytes(s);
        if (raw == null) {
            return null;
        }
        int precision = type.getPrecision();
        int target = type.getScale();
        return in -> {
            byte[] unscaled = (byte[]) raw.read(in);
            if (scale == target) {
                return DecimalData.fromUnscaledBytes(unscaled, precision, target);
            }
            BigDecimal value = new BigDecimal(new BigInteger(unscaled), scale);
            return DecimalData.fromBigDecimal(value, precision, target);
        };
    }

    private static Reader timestamp(AvroToRow.TimeUnit unit) {
        switch (unit) {
            case MICROS:
                return in -> {
                    long v = in.readLong();
                    return TimestampData.fromEpochMillis(
                            Math.floorDiv(v, 1000), (int) Math.floorMod(v, 1000) * 1000);
                };
            case NANOS:
                return in -> {
                    long v = in.readLong();
                    return TimestampData.fromEpochMillis(
                            Math.floorDiv(v, 1_000_000), (int) Math.floorMod(v, 1_000_000));
                };
            default:
                return in -> TimestampData.fromEpochMillis(in.readLong());
        }
    }

    private static byte[] array(ByteBuffer buffer) {
        if (buffer.hasArray()
                && buffer.arrayOffset() == 0
                && buffer.position() == 0
                && buffer.remaining() == buffer.array().length) {
            return buffer.array();
        }
        byte[] out = new byte[buffer.remaining()];
        buffer.get(out);
        return out;
    }
}
