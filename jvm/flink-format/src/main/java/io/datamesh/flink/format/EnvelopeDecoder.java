package io.datamesh.flink.format;

import org.apache.avro.Schema;
import org.apache.avro.generic.GenericDatumReader;
import org.apache.avro.generic.GenericRecord;
import org.apache.avro.io.Decoder;
import org.apache.flink.table.data.GenericRowData;
import org.apache.flink.table.types.logical.RowType;

import java.io.IOException;
import java.util.List;

/**
 * Reads a Debezium envelope's {@code before}, {@code after} and {@code op} straight from Avro
 * binary (skipping {@code source}, {@code transaction}, timestamps), with a
 * {@link DirectRowDecoder} for the row images. {@link #compile} returns null when the images have
 * shapes the direct decoder does not cover; the generic path then reads the whole envelope.
 */
final class EnvelopeDecoder {
    /** The parts of one change event that matter to the changelog. */
    static final class Change {
        String op;
        GenericRowData before;
        GenericRowData after;
    }

    private enum Role {
        BEFORE,
        AFTER,
        OP,
        SKIP
    }

    private final Role[] roles;
    private final Schema[] schemas;
    private final DirectRowDecoder[][] images; // per field, per union branch (null: the null branch)

    private EnvelopeDecoder(Role[] roles, Schema[] schemas, DirectRowDecoder[][] images) {
        this.roles = roles;
        this.schemas = schemas;
        this.images = images;
    }

    static EnvelopeDecoder compile(Schema envelope, RowType rowType, int schemaId)
            throws PoisonMessageException {
        List<Schema.Field> fields = envelope.getFields();
        Role[] roles = new Role[fields.size()];
        Schema[] schemas = new Schema[fields.size()];
        DirectRowDecoder[][] images = new DirectRowDecoder[fields.size()][];
        for (int i = 0; i < roles.length; i++) {
            Schema.Field f = fields.get(i);
            schemas[i] = f.schema();
            roles[i] = role(f.name());
            if (roles[i] == Role.OP && f.schema().getType() != Schema.Type.STRING) {
                return null;
            }
            if (roles[i] == Role.BEFORE || roles[i] == Role.AFTER) {
                images[i] = branches(f.schema(), rowType, schemaId);
                if (images[i] == null) {
                    return null;
                }
            }
        }
        return new EnvelopeDecoder(roles, schemas, images);
    }

    private static Role role(String name) {
        switch (name) {
            case "before":
                return Role.BEFORE;
            case "after":
                return Role.AFTER;
            case "op":
                return Role.OP;
            default:
                return Role.SKIP;
        }
    }

    private static DirectRowDecoder[] branches(Schema union, RowType rowType, int schemaId)
            throws PoisonMessageException {
        if (union.getType() != Schema.Type.UNION) {
            return null;
        }
        List<Schema> types = union.getTypes();
        DirectRowDecoder[] out = new DirectRowDecoder[types.size()];
        for (int b = 0; b < out.length; b++) {
            Schema branch = types.get(b);
            if (branch.getType() == Schema.Type.RECORD) {
                AvroToRow.fieldPositions(branch, rowType, schemaId);
                out[b] = DirectRowDecoder.compile(branch, rowType);
                if (out[b] == null) {
                    return null;
                }
            } else if (branch.getType() != Schema.Type.NULL) {
                return null;
            }
        }
        return out;
    }

    Change decode(Decoder in) throws IOException {
        Change change = new Change();
        for (int i = 0; i < roles.length; i++) {
            switch (roles[i]) {
                case BEFORE:
                    change.before = image(i, in);
                    break;
                case AFTER:
                    change.after = image(i, in);
                    break;
                case OP:
                    change.op = in.readString();
                    break;
                default:
                    GenericDatumReader.skip(schemas[i], in);
            }
        }
        return change;
    }

    private GenericRowData image(int field, Decoder in) throws IOException {
        DirectRowDecoder plan = images[field][in.readIndex()];
        if (plan == null) {
            in.readNull();
            return null;
        }
        return plan.decode(in);
    }

    /** The same parts from a generically decoded envelope. */
    static Change fromRecord(GenericRecord envelope, AvroToRow converter, int schemaId)
            throws PoisonMessageException {
        Change change = new Change();
        Object op = get(envelope, "op");
        change.op = op == null ? null : op.toString();
        Object before = get(envelope, "before");
        Object after = get(envelope, "after");
        change.before = before instanceof GenericRecord
                ? converter.convert((GenericRecord) before, schemaId) : null;
        change.after = after instanceof GenericRecord
                ? converter.convert((GenericRecord) after, schemaId) : null;
        return change;
    }

    private static Object get(GenericRecord record, String field) {
        Schema.Field f = record.getSchema().getField(field);
        return f == null ? null : record.get(f.pos());
    }
}
