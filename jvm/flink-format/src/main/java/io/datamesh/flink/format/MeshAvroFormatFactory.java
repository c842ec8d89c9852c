package io.datamesh.flink.format;

import org.apache.avro.Schema;
import org.apache.flink.api.common.serialization.DeserializationSchema;
import org.apache.flink.api.common.serialization.SerializationSchema;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.configuration.ConfigOption;
import org.apache.flink.configuration.PipelineOptions;
import org.apache.flink.configuration.ReadableConfig;
import org.apache.flink.table.api.ValidationException;
import org.apache.flink.table.connector.ChangelogMode;
import org.apache.flink.table.connector.Projection;
import org.apache.flink.table.connector.format.DecodingFormat;
import org.apache.flink.table.connector.format.EncodingFormat;
import org.apache.flink.table.connector.format.ProjectableDecodingFormat;
import org.apache.flink.table.connector.sink.DynamicTableSink;
import org.apache.flink.table.connector.source.DynamicTableSource;
import org.apache.flink.table.data.RowData;
import org.apache.flink.table.factories.DeserializationFormatFactory;
import org.apache.flink.table.factories.DynamicTableFactory;
import org.apache.flink.table.factories.FactoryUtil;
import org.apache.flink.table.factories.SerializationFormatFactory;
import org.apache.flink.table.types.DataType;
import org.apache.flink.table.types.logical.RowType;

import java.util.Map;
import java.util.Set;

/**
 * {@code 'format' = 'mesh-avro'}: Confluent-framed Avro rows against a schema registry. Adapted
 * from the design of Flink's Apache-licensed {@code RegistryAvroFormatFactory}
 * ({@code avro-confluent}), with the registry client replaced by {@link RegistrySchemaCoder}.
 *
 * <pre>
 *   'value.format' = 'mesh-avro',
 *   'value.mesh-avro.url' = 'http://registry:8081',
 *   'value.mesh-avro.subject' = 'studio.movie_catalog-value',   -- writing
 *   'value.mesh-avro.schema' = '{...}',                          -- optional writer schema
 *   'value.mesh-avro.dlq.topic' = 'studio.movie_catalog.dlq'     -- optional dead letters
 * </pre>
 */
public class MeshAvroFormatFactory implements DeserializationFormatFactory, SerializationFormatFactory {
    public static final String IDENTIFIER = "mesh-avro";

    @Override
    public DecodingFormat<DeserializationSchema<RowData>> createDecodingFormat(
            DynamicTableFactory.Context context, ReadableConfig options) {
        FactoryUtil.validateFactoryOptions(this, options);
        String url = options.get(MeshFormatOptions.URL);
        String userInfo = options.getOptional(MeshFormatOptions.BASIC_AUTH_USER_INFO).orElse(null);
        DeadLetterQueue dlq = deadLetterQueue(context, options, IDENTIFIER);
        return new ProjectableDecodingFormat<DeserializationSchema<RowData>>() {
            @Override
            public DeserializationSchema<RowData> createRuntimeDecoder(
                    DynamicTableSource.Context ctx, DataType physicalType, int[][] projections) {
                DataType produced = Projection.of(projections).project(physicalType);
                TypeInformation<RowData> typeInfo = ctx.createTypeInformation(produced);
                return new MeshAvroDeserializationSchema(
                        new RegistryRecordDecoder(new RegistrySchemaCoder.Provider(url, null, userInfo)),
                        new AvroToRow((RowType) produced.getLogicalType()),
                        typeInfo,
                        dlq);
            }

            @Override
            public ChangelogMode getChangelogMode() {
                return ChangelogMode.insertOnly();
            }
        };
    }

    @Override
    public EncodingFormat<SerializationSchema<RowData>> createEncodingFormat(
            DynamicTableFactory.Context context, ReadableConfig options) {
        FactoryUtil.validateFactoryOptions(this, options);
        String url = options.get(MeshFormatOptions.URL);
        String userInfo = options.getOptional(MeshFormatOptions.BASIC_AUTH_USER_INFO).orElse(null);
        String subject =
                options.getOptional(MeshFormatOptions.SUBJECT)
                        .orElseThrow(
                                () ->
                                        new ValidationException(
                                                "format '" + IDENTIFIER + "' needs option 'subject'"
                                                        + " to write (e.g. '<topic>-value')"));
        String schemaText = options.getOptional(MeshFormatOptions.SCHEMA).orElse(null);
        return new EncodingFormat<SerializationSchema<RowData>>() {
            @Override
            public SerializationSchema<RowData> createRuntimeEncoder(
                    DynamicTableSink.Context ctx, DataType consumedType) {
                RowType rowType = (RowType) consumedType.getLogicalType();
                Schema schema = writerSchema(rowType, subject, schemaText);
                return new MeshAvroSerializationSchema(
                        rowType, schema, new RegistrySchemaCoder.Provider(url, subject, userInfo));
            }

            @Override
            public ChangelogMode getChangelogMode() {
                return ChangelogMode.insertOnly();
            }
        };
    }

    static Schema writerSchema(RowType rowType, String subject, String schemaText) {
        if (schemaText == null) {
            return RowSchemas.derive(rowType, RowSchemas.recordName(subject));
        }
        Schema schema;
        try {
            schema = new Schema.Parser().parse(schemaText);
        } catch (RuntimeException e) {
            throw new ValidationException("option 'schema' of subject " + subject + " is not valid Avro", e);
        }
        RowSchemas.check(rowType, schema, "subject " + subject);
        return schema;
    }

    /** The dead-letter queue of a Kafka table, when the format names a 'dlq.topic'. */
    static DeadLetterQueue deadLetterQueue(
            DynamicTableFactory.Context context, ReadableConfig options, String format) {
        String topic = options.getOptional(MeshFormatOptions.DLQ_TOPIC).orElse(null);
        if (topic == null) {
            return null;
        }
        Map<String, String> table = context.getCatalogTable().getOptions();
        Map<String, String> producer = DeadLetterQueue.producerConfig(table);
        if (!producer.containsKey("bootstrap.servers")) {
            throw new ValidationException(
                    "format option 'dlq.topic' needs the table option 'properties.bootstrap.servers'");
        }
        String job = context.getConfiguration().getOptional(PipelineOptions.NAME).orElse("");
        return new DeadLetterQueue(topic, producer, table.getOrDefault("topic", ""), job, format);
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
                MeshFormatOptions.SUBJECT,
                MeshFormatOptions.SCHEMA,
                MeshFormatOptions.BASIC_AUTH_USER_INFO,
                MeshFormatOptions.DLQ_TOPIC);
    }
}
