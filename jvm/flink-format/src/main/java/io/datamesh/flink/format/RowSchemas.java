package io.datamesh.flink.format;

import org.apache.avro.LogicalTypes;
import org.apache.avro.Schema;
import org.apache.flink.table.api.ValidationException;
import org.apache.flink.table.types.logical.ArrayType;
import org.apache.flink.table.types.logical.DecimalType;
import org.apache.flink.table.types.logical.LocalZonedTimestampType;
import org.apache.flink.table.types.logical.LogicalType;
import org.apache.flink.table.types.logical.MapType;
import org.apache.flink.table.types.logical.RowType;
import org.apache.flink.table.types.logical.TimestampType;

import java.util.ArrayList;
import java.util.List;

/**
 * Avro schemas for table rows: derive one from a row type (when the table gives none) and check
 * that a given one fits a row type, so a mismatch fails when the job is planned, naming the
 * column, instead of on the first record.
 */
final class RowSchemas {
    private RowSchemas() {}

    /** The Avro record for {@code type}: nullable columns become {@code ["null", T]}. */
    static Schema derive(RowType type, String fullName) {
        List<Schema.Field> fields = new ArrayList<>();
        for (RowType.RowField f : type.getFields()) {
            Schema s = avro(f.getType(), fullName + "_" + f.getName());
            fields.add(
                    f.getType().isNullable()
                            ? new Schema.Field(f.getName(), s, null, Schema.Field.NULL_DEFAULT_VALUE)
                            : new Schema.Field(f.getName(), s));
        }
        return Schema.createRecord(fullName, null, null, false, fields);
    }

    private static Schema avro(LogicalType type, String name) {
        Schema s = nonNull(type, name);
        return type.isNullable() ? Schema.createUnion(Schema.create(Schema.Type.NULL), s) : s;
    }

    private static Schema nonNull(LogicalType type, String name) {
        switch (type.getTypeRoot()) {
            case BOOLEAN:
                return Schema.create(Schema.Type.BOOLEAN);
            case TINYINT:
            case SMALLINT:
            case INTEGER:
                return Schema.create(Schema.Type.INT);
            case BIGINT:
                return Schema.create(Schema.Type.LONG);
            case FLOAT:
                return Schema.create(Schema.Type.FLOAT);
            case DOUBLE:
                return Schema.create(Schema.Type.DOUBLE);
            case CHAR:
            case VARCHAR:
                return Schema.create(Schema.Type.STRING);
            case BINARY:
            case VARBINARY:
                return Schema.create(Schema.Type.BYTES);
            case DECIMAL:
                DecimalType d = (DecimalType) type;
                return LogicalTypes.decimal(d.getPrecision(), d.getScale())
                        .addToSchema(Schema.create(Schema.Type.BYTES));
            case DATE:
                return LogicalTypes.date().addToSchema(Schema.create(Schema.Type.INT));
            case TIME_WITHOUT_TIME_ZONE:
                return LogicalTypes.timeMillis().addToSchema(Schema.create(Schema.Type.INT));
            case TIMESTAMP_WITHOUT_TIME_ZONE:
                return timestamp(((TimestampType) type).getPrecision());
            case TIMESTAMP_WITH_LOCAL_TIME_ZONE:
                return timestamp(((LocalZonedTimestampType) type).getPrecision());
            case ROW:
                return derive((RowType) type, name);
            case ARRAY:
                return Schema.createArray(avro(((ArrayType) type).getElementType(), name));
            case MAP:
                return Schema.createMap(avro(((MapType) type).getValueType(), name));
            default:
                throw new ValidationException("no Avro type for column type " + type);
        }
    }

    private static Schema timestamp(int precision) {
        Schema base = Schema.create(Schema.Type.LONG);
        return precision <= 3
                ? LogicalTypes.timestampMillis().addToSchema(base)
                : LogicalTypes.timestampMicros().addToSchema(base);
    }

    /** Raise {@link ValidationException} naming the first column {@code schema} cannot carry. */
    static void check(RowType type, Schema schema, String what) {
        if (schema.getType() != Schema.Type.RECORD) {
            throw new ValidationException(what + ": the Avro schema must be a record");
        }
        List<Schema.Field> fields = schema.getFields();
        List<String> names = type.getFieldNames();
        if (fields.size() != names.size()) {
            throw new ValidationException(
                    what + ": the table has columns " + names + " but the Avro schema has "
                            + fields.size() + " fields");
        }
        for (int i = 0; i < names.size(); i++) {
            Schema.Field f = fields.get(i);
            if (!f.name().equals(names.get(i))) {
                throw new ValidationException(
                        what + ": column " + (i + 1) + " is '" + names.get(i)
                                + "' but Avro field " + (i + 1) + " is '" + f.name() + "'");
            }
            LogicalType t = type.getTypeAt(i);
            if (t.isNullable() && !allowsNull(f.schema())) {
                throw new ValidationException(
                        what + ": column '" + f.name() + "' is nullable (" + t
                                + ") but its Avro type " + f.schema() + " is not");
            }
            Schema.Type expected = nonNull(t.copy(false), f.name()).getType();
            Schema.Type actual = nonNullType(f.schema());
            if (!fits(expected, actual)) {
                throw new ValidationException(
                        what + ": column '" + f.name() + "' is " + t + " but its Avro type is "
                                + f.schema());
            }
        }
    }

    private static boolean fits(Schema.Type expected, Schema.Type actual) {
        return expected == actual
                || (expected == Schema.Type.INT && actual == Schema.Type.LONG)
                || (expected == Schema.Type.STRING && actual == Schema.Type.ENUM)
                || (expected == Schema.Type.BYTES && actual == Schema.Type.FIXED);
    }

    private static boolean allowsNull(Schema s) {
        return s.getType() == Schema.Type.NULL
                || (s.getType() == Schema.Type.UNION
                        && s.getTypes().stream().anyMatch(b -> b.getType() == Schema.Type.NULL));
    }

    private static Schema.Type nonNullType(Schema s) {
        if (s.getType() != Schema.Type.UNION) {
            return s.getType();
        }
        return s.getTypes().stream()
                .filter(b -> b.getType() != Schema.Type.NULL)
                .findFirst()
                .map(Schema::getType)
                .orElse(Schema.Type.NULL);
    }

    /** Avro full name for a derived record: {@code <subject without -value/-key>} made valid. */
    static String recordName(String subject) {
        String base = subject == null ? "record" : subject.replaceAll("-(value|key)$", "");
        String cleaned = base.replaceAll("[^A-Za-z0-9_.]", "_");
        StringBuilder out = new StringBuilder();
        for (String part : cleaned.split("\\.")) {
            if (part.isEmpty()) {
                continue;
            }
            if (out.length() > 0) {
                out.append('.');
            }
            out.append(Character.isDigit(part.charAt(0)) ? "_" + part : part);
        }
        String suffix = subject != null && subject.endsWith("-key") ? "Key" : "Value";
        return (out.length() == 0 ? "record" : out) + "." + suffix;
    }
}
