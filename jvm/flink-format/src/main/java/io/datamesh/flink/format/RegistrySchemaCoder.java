package io.datamesh.flink.format;

import org.apache.avro.Schema;
import org.apache.flink.formats.avro.SchemaCoder;

import java.io.DataInputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.util.Objects;

/**
 * flink-avro's {@link SchemaCoder} for the Confluent wire format: magic byte {@code 0}, the schema
 * id as a 4-byte big-endian int, then the Avro binary body.
 *
 * <p>Reading looks the writer schema up by id (so a compatible upstream change needs no redeploy);
 * writing registers (or finds) the output schema under the configured subject and writes its id.
 */
public final class RegistrySchemaCoder implements SchemaCoder {
    static final byte MAGIC_BYTE = 0;
    static final int HEADER_BYTES = 5;

    private final RegistryClient client;
    private final String subject;
    private Schema lastWritten;
    private int lastWrittenId;

    RegistrySchemaCoder(RegistryClient client, String subject) {
        this.client = client;
        this.subject = subject;
    }

    @Override
    public Schema readSchema(InputStream in) throws IOException {
        DataInputStream data = new DataInputStream(in);
        int magic = data.read();
        if (magic != MAGIC_BYTE) {
            throw new PoisonMessageException(
                    magic < 0
                            ? "empty message"
                            : "first byte is " + magic + ", not the Confluent magic byte 0",
                    -1);
        }
        int id;
        try {
            id = data.readInt();
        } catch (EOFException e) {
            throw new PoisonMessageException("message is shorter than the 5-byte header", -1, e);
        }
        return client.schemaById(id);
    }

    /** The schema id in the header of a framed message, or -1 when it has no valid header. */
    static int schemaId(byte[] message) {
        if (message == null || message.length < HEADER_BYTES || message[0] != MAGIC_BYTE) {
            return -1;
        }
        return ((message[1] & 0xff) << 24)
                | ((message[2] & 0xff) << 16)
                | ((message[3] & 0xff) << 8)
                | (message[4] & 0xff);
    }

    @Override
    public void writeSchema(Schema schema, OutputStream out) throws IOException {
        if (subject == null) {
            throw new IllegalStateException("writing needs the format option 'subject'");
        }
        if (schema != lastWritten) { // identity: RegistryAvroSerializationSchema reuses one Schema
            lastWrittenId = client.register(subject, schema);
            lastWritten = schema;
        }
        out.write(MAGIC_BYTE);
        out.write(lastWrittenId >>> 24);
        out.write(lastWrittenId >>> 16);
        out.write(lastWrittenId >>> 8);
        out.write(lastWrittenId);
    }

    /** Serializable recipe for a coder: each task builds its own (sharing the registry cache). */
    public static final class Provider implements SchemaCoder.SchemaCoderProvider {
        private static final long serialVersionUID = 1L;

        private final String url;
        private final String subject;
        private final String userInfo;

        public Provider(String url, String subject, String userInfo) {
            this.url = Objects.requireNonNull(url, "registry url");
            this.subject = subject;
            this.userInfo = userInfo;
        }

        @Override
        public SchemaCoder get() {
            return new RegistrySchemaCoder(RegistryClient.shared(url, userInfo), subject);
        }

        @Override
        public boolean equals(Object o) {
            if (!(o instanceof Provider)) {
                return false;
            }
            Provider that = (Provider) o;
            return url.equals(that.url)
                    && Objects.equals(subject, that.subject)
                    && Objects.equals(userInfo, that.userInfo);
        }

        @Override
        public int hashCode() {
            return Objects.hash(url, subject, userInfo);
        }
    }
}
