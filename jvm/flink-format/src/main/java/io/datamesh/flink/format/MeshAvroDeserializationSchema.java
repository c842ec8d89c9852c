package io.datamesh.flink.format;

import org.apache.avro.Schema;
import org.apache.flink.api.common.serialization.DeserializationSchema;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.metrics.Counter;
import org.apache.flink.table.data.RowData;

import java.io.IOException;

/** Confluent-framed Avro values (or keys) to table rows; poison goes to the dead-letter topic. */
public final class MeshAvroDeserializationSchema implements DeserializationSchema<RowData> {
    private static final long serialVersionUID = 1L;

    private final RegistryRecordDecoder decoder;
    private final AvroToRow converter;
    private final TypeInformation<RowData> producedType;
    private final DeadLetterQueue deadLetters;
    private transient Counter deadLetterCount;
    private transient RowPlans plans;

    MeshAvroDeserializationSchema(
            RegistryRecordDecoder decoder,
            AvroToRow converter,
            TypeInformation<RowData> producedType,
            DeadLetterQueue deadLetters) {
        this.decoder = decoder;
        this.converter = converter;
        this.producedType = producedType;
        this.deadLetters = deadLetters;
    }

    @Override
    public void open(InitializationContext context) {
        decoder.open();
        plans = new RowPlans(converter.rowType());
        deadLetterCount = context.getMetricGroup().counter(Poison.METRIC);
    }

    @Override
    public RowData deserialize(byte[] message) throws IOException {
        if (message == null || Heartbeat.isHeartbeat(message)) {
            return null; // a heartbeat is forwarded by the job's own branch, never decoded
        }
        int id = RegistrySchemaCoder.schemaId(message);
        try {
            Schema writer = decoder.header(message);
            DirectRowDecoder plan = plans.of(writer, id);
            try {
                RowData row =
                        plan != null
                                ? plan.decode(decoder.body())
                                : converter.convert(decoder.generic(writer), id);
                decoder.requireEnd();
                return row;
            } catch (WriterSchemaMismatch e) {
                throw e; // not poison: the task fails, nothing is skipped
            } catch (IOException | RuntimeException e) {
                throw RegistryRecordDecoder.poison(id, writer, e);
            }
        } catch (PoisonMessageException e) {
            Poison.handle(deadLetters, message, e, deadLetterCount);
            return null;
        }
    }

    @Override
    public boolean isEndOfStream(RowData nextElement) {
        return false;
    }

    @Override
    public TypeInformation<RowData> getProducedType() {
        return producedType;
    }
}
