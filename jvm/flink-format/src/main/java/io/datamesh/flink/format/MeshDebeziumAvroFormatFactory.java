package io.datamesh.flink.format;

import org.apache.flink.api.common.serialization.DeserializationSchema;
import org.apache.flink.configuration.ConfigOption;
import org.apache.flink.configuration.ReadableConfig;
import org.apache.flink.table.api.ValidationException;
import org.apache.flink.table.connector.ChangelogMode;
import org.apache.flink.table.connector.Projection;
import org.apache.flink.table.connector.format.DecodingFormat;
import org.apache.flink.table.connector.format.ProjectableDecodingFormat;
import org.apache.flink.table.connector.source.DynamicTableSource;
import org.apache.flink.table.data.RowData;
import org.apache.flink.table.factories.DeserializationFormatFactory;
import org.apache.flink.table.factories.DynamicTableFactory;
import org.apache.flink.table.factories.FactoryUtil;
import org.apache.flink.table.types.DataType;
import org.apache.flink.table.types.logical.RowType;
import org.apache.flink.types.RowKind;

import java.util.Locale;
import java.util.Set;

/**
 * {@code 'format' = 'mesh-debezium-avro'}: a CDC topic of Debezium envelopes in Confluent-framed
 * Avro, read as a changelog (see {@link DebeziumAvroDeserializationSchema} for the modes). Adapted
 * from the design of Flink's Apache-licensed {@code DebeziumAvroFormatFactory}; reading only —
 * updating results are written with {@code upsert-kafka} and {@code mesh-avro}.
 */
public class MeshDebeziumAvroFormatFactory implements DeserializationFormatFactory {
    public static final String IDENTIFIER = "mesh-debezium-avro";

    @Override
    public DecodingFormat<DeserializationSchema<RowData>> createDecodingFormat(
            DynamicTableFactory.Context context, ReadableConfig options) {
        FactoryUtil.validateFactoryOptions(this, options);
        String url = options.get(MeshFormatOptions.URL);
        String userInfo = options.getOptional(MeshFormatOptions.BASIC_AUTH_USER_INFO).orElse(null);
        DebeziumAvroDeserializationSchema.Mode mode = mode(options.get(MeshFormatOptions.CHANGELOG_MODE));
        DeadLetterQueue dlq = MeshAvroFormatFactory.deadLetterQueue(context, options, IDENTIFIER);
        return new ProjectableDecodingFormat<DeserializationSchema<RowData>>() {
            @Override
            public DeserializationSchema<RowData> createRuntimeDecoder(
                    DynamicTableSource.Context ctx, DataType physicalType, int[][] projections) {
                DataType produced = Projection.of(projections).project(physicalType);
                return new DebeziumAvroDeserializationSchema(
                        new RegistryRecordDecoder(new RegistrySchemaCoder.Provider(url, null, userInfo)),
                        new AvroToRow((RowType) produced.getLogicalType()),
                        ctx.createTypeInformation(produced),
                        dlq,
                        mode);
            }

            @Override
            public ChangelogMode getChangelogMode() {
                if (mode == DebeziumAvroDeserializationSchema.Mode.ALL) {
                    return ChangelogMode.all();
                }
                return ChangelogMode.newBuilder()
                        .addContainedKind(RowKind.UPDATE_AFTER)
                        .addContainedKind(RowKind.DELETE)
                        .build();
            }
        };
    }

    private static DebeziumAvroDeserializationSchema.Mode mode(String value) {
        try {
            return DebeziumAvroDeserializationSchema.Mode.valueOf(value.toUpperCase(Locale.ROOT));
        } catch (IllegalArgumentException e) {
            throw new ValidationException(
                    "format '" + IDENTIFIER + "': changelog-mode must be 'upsert' or 'all', got '"
                            + value + "'");
        }
    }

    @Override
    public String factoryIdentifier() {
        return IDENTIFIER;
    }

    @Override
    public Set<ConfigOption<?>> requiredOptions() {
        return Set.of(MeshFormatOptions.URL);
    }

    @Override
    public Set<ConfigOption<?>> optionalOptions() {
        return Set.of(
                MeshFormatOptions.BASIC_AUTH_USER_INFO,
                MeshFormatOptions.DLQ_TOPIC,
                MeshFormatOptions.CHANGELOG_MODE);
    }
}
