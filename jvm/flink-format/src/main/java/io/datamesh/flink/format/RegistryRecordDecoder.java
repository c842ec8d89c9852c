package io.datamesh.flink.format;

import org.apache.avro.Schema;
import org.apache.avro.generic.GenericDatumReader;
import org.apache.avro.generic.GenericRecord;
import org.apache.avro.io.BinaryDecoder;
import org.apache.avro.io.DecoderFactory;
import org.apache.flink.formats.avro.SchemaCoder;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.Serializable;
import java.util.IdentityHashMap;
import java.util.Map;

/**
 * Decodes one Confluent-framed message into a record with its writer schema, which the
 * {@link SchemaCoder} looks up by the id in the header. Anything wrong with the bytes is a
 * {@link PoisonMessageException}; a registry that does not answer is a plain {@link IOException}.
 */
final class RegistryRecordDecoder implements Serializable {
    private static final long serialVersionUID = 1L;

    private final SchemaCoder.SchemaCoderProvider coderProvider;
    private transient SchemaCoder coder;
    private transient Map<Schema, GenericDatumReader<Object>> readers;
    private transient BinaryDecoder decoder;

    RegistryRecordDecoder(SchemaCoder.SchemaCoderProvider coderProvider) {
        this.coderProvider = coderProvider;
    }

    void open() {
        coder = coderProvider.get();
        readers = new IdentityHashMap<>(); // the registry client hands out one Schema per id
    }

    /**
     * Read the header of {@code message}: its writer schema, with {@link #body()} positioned on
     * the Avro body that follows.
     */
    Schema header(byte[] message) throws IOException {
        int id = RegistrySchemaCoder.schemaId(message);
        Schema writer =
                coder.readSchema(
                        new ByteArrayInputStream(
                                message, 0, Math.min(RegistrySchemaCoder.HEADER_BYTES, message.length)));
        if (writer.getType() != Schema.Type.RECORD) {
            throw new PoisonMessageException(
                    "schema id " + id + " is a " + writer.getType() + ", not a record", id);
        }
        int offset = RegistrySchemaCoder.HEADER_BYTES;
        decoder = DecoderFactory.get().binaryDecoder(message, offset, message.length - offset, decoder);
        return writer;
    }

    BinaryDecoder body() {
        return decoder;
    }

    /** The body as a generic record of {@code writer} (after {@link #header}). */
    GenericRecord generic(Schema writer) throws IOException {
        GenericDatumReader<Object> reader = readers.computeIfAbsent(writer, GenericDatumReader::new);
        return (GenericRecord) reader.read(null, decoder);
    }

    /** Raise when the body had bytes left over (it was written with another schema). */
    void requireEnd() throws IOException {
        if (!decoder.isEnd()) {
            throw new IOException("bytes left over after the record");
        }
    }

    /** A decode failure of the body as a poison message of schema {@code id}. */
    static PoisonMessageException poison(int id, Schema writer, Exception e) {
        if (e instanceof PoisonMessageException) {
            return (PoisonMessageException) e;
        }
        return new PoisonMessageException(
                "body does not decode with writer schema id " + id + " (" + writer.getFullName()
                        + "): " + e,
                id,
                e);
    }
}
