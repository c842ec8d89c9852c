package io.datamesh.flink.format;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.apache.flink.api.common.functions.util.ListCollector;
import org.apache.flink.table.data.RowData;
import org.apache.flink.table.types.logical.BigIntType;
import org.apache.flink.table.types.logical.LogicalType;
import org.apache.flink.table.types.logical.RowType;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/**
 * Heartbeat records (datamesh/heartbeat.py) are dropped by both formats before any decoding: no
 * row, no dead letter (there is no registry and no queue here: touching either would fail).
 */
class HeartbeatTest {
    static final RowType TABLE =
            RowType.of(new LogicalType[] {new BigIntType(false)}, new String[] {"id"});
    static final byte[] BEAT =
            ("\u007fmesh.heartbeat\u007f{\"source\":\"d.public.t\",\"seq\":1,\"op\":\"c\",\"commit_ms\":5}")
                    .getBytes(StandardCharsets.UTF_8);

    private static RegistryRecordDecoder nowhere() {
        return new RegistryRecordDecoder(new RegistrySchemaCoder.Provider("http://127.0.0.1:1", null, null));
    }

    @Test
    void theMarkerIsRecognisedAndNothingElse() {
        assertTrue(Heartbeat.isHeartbeat(BEAT));
        assertFalse(Heartbeat.isHeartbeat(new byte[] {0, 0, 0, 0, 1, 2}));
        assertFalse(Heartbeat.isHeartbeat("\u007fmesh.heart".getBytes(StandardCharsets.UTF_8)));
        assertFalse(Heartbeat.isHeartbeat(null));
    }

    @Test
    void plainAvroDropsAHeartbeat() throws IOException {
        TestContext ctx = new TestContext();
        MeshAvroDeserializationSchema in =
                new MeshAvroDeserializationSchema(nowhere(), new AvroToRow(TABLE), null, null);
        in.open(ctx);
        assertNull(in.deserialize(BEAT));
        assertEquals(0, ctx.count(Poison.METRIC));
    }

    @Test
    void debeziumDropsAHeartbeat() throws IOException {
        TestContext ctx = new TestContext();
        DebeziumAvroDeserializationSchema in =
                new DebeziumAvroDeserializationSchema(
                        nowhere(), new AvroToRow(TABLE), null, null,
                        DebeziumAvroDeserializationSchema.Mode.UPSERT);
        in.open(ctx);
        List<RowData> rows = new ArrayList<>();
        in.deserialize(BEAT, new ListCollector<>(rows));
        assertTrue(rows.isEmpty());
        assertEquals(0, ctx.count(Poison.METRIC));
    }
}
