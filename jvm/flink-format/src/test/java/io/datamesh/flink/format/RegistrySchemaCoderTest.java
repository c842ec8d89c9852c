package io.datamesh.flink.format;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.apache.avro.Schema;
import org.apache.flink.formats.avro.SchemaCoder;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;

/** The Confluent framing and the registry caches, against a real (tiny) HTTP registry. */
class RegistrySchemaCoderTest {
    static final String USER =
            "{\"type\":\"record\",\"name\":\"User\",\"fields\":[{\"name\":\"id\",\"type\":\"long\"}]}";

    private RegistryServer registry;

    @BeforeEach
    void start() throws IOException {
        registry = new RegistryServer();
    }

    @AfterEach
    void stop() {
        registry.close();
    }

    private SchemaCoder coder(String subject) {
        return new RegistrySchemaCoder.Provider(registry.url(), subject, null).get();
    }

    private static byte[] header(int magic, int id) {
        return new byte[] {(byte) magic, (byte) (id >>> 24), (byte) (id >>> 16), (byte) (id >>> 8), (byte) id};
    }

    @Test
    void writesMagicByteAndBigEndianIdRegisteringOncePerSchema() throws IOException {
        Schema schema = new Schema.Parser().parse(USER);
        SchemaCoder coder = coder("users-value");
        ByteArrayOutputStream first = new ByteArrayOutputStream();
        coder.writeSchema(schema, first);
        int id = RegistrySchemaCoder.schemaId(first.toByteArray());
        assertTrue(id >= 100, "id " + id);
        assertArrayEquals(header(0, id), first.toByteArray());
        for (int i = 0; i < 50; i++) {
            coder.writeSchema(schema, new ByteArrayOutputStream());
        }
        // another task's coder of the same registry shares the client and its id cache
        SchemaCoder other = coder("users-value");
        ByteArrayOutputStream again = new ByteArrayOutputStream();
        other.writeSchema(new Schema.Parser().parse(USER), again);
        assertArrayEquals(first.toByteArray(), again.toByteArray());
        assertEquals(1, registry.count("POST", "/subjects/users-value/versions"), registry.requests.toString());
        // the registered schema's id is known to readers without asking the registry
        assertEquals(schema, coder(null).readSchema(new ByteArrayInputStream(first.toByteArray())));
        assertEquals(0, registry.count("GET", "/schemas/ids/"));
    }

    @Test
    void readsTheWriterSchemaByIdOnceAndKeepsIt() throws IOException {
        int id = registry.add(USER);
        SchemaCoder coder = coder(null);
        Schema first = coder.readSchema(new ByteArrayInputStream(header(0, id)));
        assertEquals(new Schema.Parser().parse(USER), first);
        for (int i = 0; i < 50; i++) {
            assertSame(first, coder(null).readSchema(new ByteArrayInputStream(header(0, id))));
        }
        assertEquals(1, registry.count("GET", "/schemas/ids/" + id));
        assertEquals(1, registry.requests.size());
    }

    @Test
    void headersThatAreNotConfluentFramingArePoison() {
        SchemaCoder coder = coder(null);
        PoisonMessageException magic = assertThrows(PoisonMessageException.class,
                () -> coder.readSchema(new ByteArrayInputStream(header(7, 1))));
        assertEquals("first byte is 7, not the Confluent magic byte 0", magic.getMessage());
        assertEquals(-1, magic.schemaId());
        PoisonMessageException empty = assertThrows(PoisonMessageException.class,
                () -> coder.readSchema(new ByteArrayInputStream(new byte[0])));
        assertEquals("empty message", empty.getMessage());
        PoisonMessageException shortHeader = assertThrows(PoisonMessageException.class,
                () -> coder.readSchema(new ByteArrayInputStream(new byte[] {0, 0, 1})));
        assertEquals("message is shorter than the 5-byte header", shortHeader.getMessage());
        assertTrue(registry.requests.isEmpty());
        assertEquals(-1, RegistrySchemaCoder.schemaId(new byte[] {0, 0, 0, 1}));
        assertEquals(-1, RegistrySchemaCoder.schemaId(header(1, 5)));
        assertEquals(0x01020304, RegistrySchemaCoder.schemaId(header(0, 0x01020304)));
        assertEquals(-2, RegistrySchemaCoder.schemaId(header(0, -2))); // all four bytes, unsigned ones
    }

    @Test
    void anIdUnknownToTheRegistryIsPoisonButAWrongUrlIsNot() {
        SchemaCoder coder = coder(null);
        PoisonMessageException unknown = assertThrows(PoisonMessageException.class,
                () -> coder.readSchema(new ByteArrayInputStream(header(0, 4242))));
        assertEquals(4242, unknown.schemaId());
        assertTrue(unknown.getMessage().contains("schema id 4242 is unknown"), unknown.getMessage());
        registry.wrongUrl = true;
        IOException wrong = assertThrows(IOException.class,
                () -> coder.readSchema(new ByteArrayInputStream(header(0, 4243))));
        assertFalse(wrong instanceof PoisonMessageException, "a bare 404 must fail the job");
        assertTrue(wrong.getMessage().contains("HTTP 404"), wrong.getMessage());
    }

    @Test
    void aSchemaThatIsNotAvroIsPoison() {
        int id = registry.add("syntax = \"proto3\"; message M {}", "PROTOBUF");
        PoisonMessageException e = assertThrows(PoisonMessageException.class,
                () -> coder(null).readSchema(new ByteArrayInputStream(header(0, id))));
        assertEquals("schema id " + id + " is a PROTOBUF schema, not Avro", e.getMessage());
    }

    @Test
    void serverErrorsAreRetriedThenServed() throws IOException {
        int id = registry.add(USER);
        registry.failures.set(2);
        Schema schema = coder(null).readSchema(new ByteArrayInputStream(header(0, id)));
        assertEquals("User", schema.getName());
        assertEquals(3, registry.count("GET", "/schemas/ids/" + id));
    }
}
