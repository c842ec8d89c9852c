package io.datamesh.flink.format;

import org.apache.avro.Schema;
import org.apache.avro.io.BinaryEncoder;
import org.apache.avro.io.EncoderFactory;
import org.apache.flink.api.common.serialization.SerializationSchema;
import org.apache.flink.formats.avro.AvroRowDataSerializationSchema;
import org.apache.flink.formats.avro.RegistryAvroSerializationSchema;
import org.apache.flink.formats.avro.SchemaCoder;
import org.apache.flink.table.data.RowData;
import org.apache.flink.table.types.logical.RowType;

import java.io.ByteArrayOutputStream;
import java.io.IOException;

/**
 * Table rows to Confluent-framed Avro: the {@link SchemaCoder} writes the header (registering the
 * output schema under its subject once), {@link DirectRowEncoder} the body. Rows with nested
 * types go through flink-avro's {@code AvroRowDataSerializationSchema} over a
 * {@code RegistryAvroSerializationSchema} with the same coder.
 */
public final class MeshAvroSerializationSchema implements SerializationSchema<RowData> {
    private static final long serialVersionUID = 1L;

    private final RowType rowType;
    private final String schemaText;
    private final SchemaCoder.SchemaCoderProvider coderProvider;
    private transient Schema schema;
    private transient SchemaCoder coder;
    private transient DirectRowEncoder direct;
    private transient AvroRowDataSerializationSchema generic;
    private transient ByteArrayOutputStream buffer;
    private transient BinaryEncoder encoder;

    MeshAvroSerializationSchema(
            RowType rowType, Schema schema, SchemaCoder.SchemaCoderProvider coderProvider) {
        this.rowType = rowType;
        this.schemaText = schema.toString();
        this.coderProvider = coderProvider;
    }

    @Override
    public void open(InitializationContext context) throws Exception {
        schema = new Schema.Parser().parse(schemaText);
        direct = DirectRowEncoder.compile(rowType, schema);
        if (direct == null) {
            generic =
                    new AvroRowDataSerializationSchema(
                            rowType,
                            RegistryAvroSerializationSchema.forGeneric(schema, coderProvider),
                            new RowToAvro(rowType));
            generic.open(context);
            return;
        }
        coder = coderProvider.get();
        buffer = new ByteArrayOutputStream(256);
    }

    @Override
    public byte[] serialize(RowData row) {
        if (generic != null) {
            return generic.serialize(row);
        }
        try {
            buffer.reset();
            coder.writeSchema(schema, buffer);
            encoder = EncoderFactory.get().directBinaryEncoder(buffer, encoder);
            direct.encode(row, encoder);
            encoder.flush();
            return buffer.toByteArray();
        } catch (IOException e) {
            throw new RuntimeException("Failed to serialize row with schema " + schema.getFullName(), e);
        }
    }
}
