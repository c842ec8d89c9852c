package io.datamesh.flink.format;

import org.apache.avro.Schema;
import org.apache.flink.table.types.logical.RowType;

import java.util.IdentityHashMap;
import java.util.Map;

/**
 * The {@link DirectRowDecoder} of each writer schema seen by one deserializer (null: use the
 * generic path). Compiling first checks that the writer can fill every NOT NULL column.
 */
final class RowPlans {
    private static final DirectRowDecoder GENERIC = null;

    private final RowType rowType;
    private final Map<Schema, DirectRowDecoder> plans = new IdentityHashMap<>();

    RowPlans(RowType rowType) {
        this.rowType = rowType;
    }

    DirectRowDecoder of(Schema writer, int schemaId) throws PoisonMessageException {
        if (plans.containsKey(writer)) {
            return plans.get(writer);
        }
        AvroToRow.fieldPositions(writer, rowType, schemaId);
        DirectRowDecoder plan = DirectRowDecoder.compile(writer, rowType);
        plans.put(writer, plan == null ? GENERIC : plan);
        return plan;
    }
}
