package io.datamesh.flink.format;

import java.nio.charset.StandardCharsets;

/**
 * Synthetic heartbeat records (Python: {@code datamesh/heartbeat.py}): their key and value start
 * with {@link #MARKER}, whose first byte (0x7f) is never a Confluent frame's magic byte (0). The
 * formats drop them before decoding, so user SQL never sees one; the platform's generated jobs
 * forward them through a separate {@code raw} branch.
 */
public final class Heartbeat {
    /** Keep in step with {@code datamesh.heartbeat.MARKER}. */
    public static final byte[] MARKER = "\u007fmesh.heartbeat\u007f".getBytes(StandardCharsets.UTF_8);

    private Heartbeat() {}

    /** True for the key or value of a heartbeat record. */
    public static boolean isHeartbeat(byte[] data) {
        if (data == null || data.length < MARKER.length) {
            return false;
        }
        for (int i = 0; i < MARKER.length; i++) {
            if (data[i] != MARKER[i]) {
                return false;
            }
        }
        return true;
    }
}
