package io.datamesh.flink.format;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.apache.flink.kafka.shaded.org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.flink.kafka.shaded.org.apache.kafka.common.header.Header;
import org.apache.flink.metrics.SimpleCounter;
import org.apache.flink.table.types.logical.BigIntType;
import org.apache.flink.table.types.logical.LogicalType;
import org.apache.flink.table.types.logical.RowType;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Poison (bytes that can never be decoded) goes to the dead-letter queue, or fails the task when
 * there is none; a registry that does not answer is never poison. Sends to a dead-letter topic
 * are tried against a port nobody listens on: they must fail the task, not drop the message.
 */
class PoisonTest {
    static final RowType TABLE =
            RowType.of(new LogicalType[] {new BigIntType(false)}, new String[] {"id"});
    static final String ID_ONLY =
            "{\"type\":\"record\",\"name\":\"R\",\"fields\":[{\"name\":\"id\",\"type\":\"long\"}]}";

    private RegistryServer registry;

    @BeforeEach
    void start() throws IOException {
        registry = new RegistryServer();
    }

    @AfterEach
    void stop() {
        registry.close();
    }

    private static int closedPort() throws IOException {
        try (ServerSocket socket = new ServerSocket(0)) {
            return socket.getLocalPort();
        }
    }

    private static DeadLetterQueue unreachableQueue() throws IOException {
        Map<String, String> config = new LinkedHashMap<>();
        config.put("bootstrap.servers", "127.0.0.1:" + closedPort());
        config.put("max.block.ms", "1500"); // metadata for the send: fail fast, not after 60 s
        return new DeadLetterQueue("t.dlq", config, "t", "job-1", "mesh-avro");
    }

    private MeshAvroDeserializationSchema deserializer(DeadLetterQueue queue, TestContext ctx) {
        MeshAvroDeserializationSchema in =
                new MeshAvroDeserializationSchema(
                        new RegistryRecordDecoder(new RegistrySchemaCoder.Provider(registry.url(), null, null)),
                        new AvroToRow(TABLE),
                        null,
                        queue);
        in.open(ctx);
        return in;
    }

    private static byte[] framed(int id, byte... body) {
        byte[] out = new byte[5 + body.length];
        out[4] = (byte) id;
        System.arraycopy(body, 0, out, 5, body.length);
        return out;
    }

    @Test
    void withoutADeadLetterTopicPoisonFailsTheTaskNamingWhy() {
        byte[] message = "not avro".getBytes(StandardCharsets.UTF_8);
        IOException e = assertThrows(IOException.class,
                () -> deserializer(null, new TestContext()).deserialize(message));
        assertEquals("poison message and no 'dlq.topic' configured: first byte is 110, not the"
                + " Confluent magic byte 0", e.getMessage());
        assertInstanceOf(PoisonMessageException.class, e.getCause());
    }

    @Test
    void aBodyThatDoesNotMatchItsWriterSchemaIsPoisonOfThatId() {
        int id = registry.add(ID_ONLY);
        IOException truncated = assertThrows(IOException.class,
                () -> deserializer(null, new TestContext()).deserialize(framed(id)));
        PoisonMessageException cause = assertInstanceOf(PoisonMessageException.class, truncated.getCause());
        assertEquals(id, cause.schemaId());
        assertTrue(cause.getMessage().startsWith("body does not decode with writer schema id " + id),
                cause.getMessage());
        IOException leftover = assertThrows(IOException.class,
                () -> deserializer(null, new TestContext()).deserialize(framed(id, (byte) 2, (byte) 9)));
        assertTrue(leftover.getCause().getMessage().contains("bytes left over"), leftover.getMessage());
    }

    @Test
    void aMissingNotNullColumnFailsTheTaskAndIsNeverDeadLettered() throws IOException {
        // upstream dropped a required column: every message of that schema would be lost to the
        // job as poison, so the task fails there instead (no dead letter is even tried)
        int id = registry.add("{\"type\":\"record\",\"name\":\"R\",\"fields\":[]}");
        TestContext ctx = new TestContext();
        WriterSchemaMismatch e = assertThrows(WriterSchemaMismatch.class,
                () -> deserializer(unreachableQueue(), ctx).deserialize(framed(id)));
        assertTrue(e.getMessage().contains("has no field 'id' and the column is NOT NULL"), e.getMessage());
        assertEquals(id, e.schemaId());
        assertEquals(0, ctx.count(Poison.METRIC));
    }

    @Test
    void poisonIsSentToTheDeadLetterTopicAndAFailedSendFailsTheTask() throws IOException {
        TestContext ctx = new TestContext();
        MeshAvroDeserializationSchema in = deserializer(unreachableQueue(), ctx);
        IOException e = assertThrows(IOException.class, () -> in.deserialize(new byte[] {9}));
        assertEquals("could not write a poison message to dead-letter topic \"t.dlq\"", e.getMessage());
        assertEquals(0, ctx.count(Poison.METRIC)); // counted only once the topic has it
        int id = registry.add(ID_ONLY);
        assertEquals(42L, in.deserialize(framed(id, (byte) 84)).getLong(0)); // the task goes on
    }

    @Test
    void aRegistryThatDoesNotAnswerIsNeverPoison() throws IOException {
        registry.wrongUrl = true;
        IOException e = assertThrows(IOException.class,
                () -> deserializer(unreachableQueue(), new TestContext()).deserialize(framed(1, (byte) 2)));
        assertFalse(e instanceof PoisonMessageException);
        assertTrue(e.getMessage().startsWith("schema registry could not read schema id 1: HTTP 404"),
                e.getMessage()); // not "could not write a poison message": no dead letter tried
    }

    @Test
    void poisonHandlingCountsOnlyWhatTheQueueTook() {
        SimpleCounter counter = new SimpleCounter();
        PoisonMessageException poison = new PoisonMessageException("bad", 3);
        IOException none = assertThrows(IOException.class,
                () -> Poison.handle(null, new byte[] {1}, poison, counter));
        assertSame(poison, none.getCause());
        assertEquals(0, counter.getCount());
    }

    @Test
    void theDeadLetterIsTheMessageUnchangedWithWhyInHeaders() {
        DeadLetterQueue queue = new DeadLetterQueue("t.dlq", Map.of(), "t", "job-1", "mesh-avro");
        byte[] message = {0, 0, 0, 0, 7, 1, 2};
        PoisonMessageException error =
                new PoisonMessageException("body does not decode", 7, new java.io.EOFException());
        ProducerRecord<byte[], byte[]> record = queue.record(message, error);
        assertEquals("t.dlq", record.topic());
        assertNull(record.key());
        assertNull(record.partition());
        assertArrayEquals(message, record.value());
        Map<String, String> headers = new LinkedHashMap<>();
        for (Header h : record.headers()) {
            headers.put(h.key(), new String(h.value(), StandardCharsets.UTF_8));
        }
        Map<String, String> expected = new LinkedHashMap<>();
        expected.put("mesh.error", "body does not decode");
        expected.put("mesh.error.class", "java.io.EOFException");
        expected.put("mesh.source.topic", "t");
        expected.put("mesh.schema.id", "7");
        expected.put("mesh.job", "job-1");
        expected.put("mesh.format", "mesh-avro");
        assertEquals(expected, headers);
    }

    @Test
    void theQueueTakesOnlyTheClustersAddressAndSecurityFromTableOptions() {
        Map<String, String> options = new LinkedHashMap<>();
        options.put("properties.bootstrap.servers", "b:9092");
        options.put("properties.sasl.mechanism", "PLAIN");
        options.put("properties.security.protocol", "SASL_SSL");
        options.put("properties.ssl.truststore.location", "/t");
        options.put("properties.group.id", "g");
        options.put("properties.auto.offset.reset", "earliest");
        options.put("topic", "t");
        assertEquals(
                Map.of("bootstrap.servers", "b:9092", "sasl.mechanism", "PLAIN",
                        "security.protocol", "SASL_SSL", "ssl.truststore.location", "/t"),
                DeadLetterQueue.producerConfig(options));
    }
}
