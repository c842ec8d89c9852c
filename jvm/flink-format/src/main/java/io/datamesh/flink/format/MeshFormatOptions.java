package io.datamesh.flink.format;

import org.apache.flink.configuration.ConfigOption;
import org.apache.flink.configuration.ConfigOptions;

/** Options of the {@code mesh-avro} and {@code mesh-debezium-avro} formats. */
public final class MeshFormatOptions {
    private MeshFormatOptions() {}

    public static final ConfigOption<String> URL =
            ConfigOptions.key("url")
                    .stringType()
                    .noDefaultValue()
                    .withDescription("Schema registry URL (Confluent REST API).");

    public static final ConfigOption<String> SUBJECT =
            ConfigOptions.key("subject")
                    .stringType()
                    .noDefaultValue()
                    .withDescription(
                            "Subject the output schema is registered under (writing only).");

    public static final ConfigOption<String> SCHEMA =
            ConfigOptions.key("schema")
                    .stringType()
                    .noDefaultValue()
                    .withDescription(
                            "Avro schema (JSON) to write with; derived from the row type when"
                                    + " absent. Must match the table's columns in order.");

    public static final ConfigOption<String> BASIC_AUTH_USER_INFO =
            ConfigOptions.key("basic-auth.user-info")
                    .stringType()
                    .noDefaultValue()
                    .withDescription(
                            "user:password for the registry's basic authentication, or"
                                    + " ${env:NAME} to read it from the environment of the Flink"
                                    + " process that opens the connection.");

    public static final ConfigOption<String> DLQ_TOPIC =
            ConfigOptions.key("dlq.topic")
                    .stringType()
                    .noDefaultValue()
                    .withDescription(
                            "Dead-letter topic for messages that do not decode (written with the"
                                    + " table's properties.bootstrap.servers and security"
                                    + " settings). Without it a poison message fails the job.");

    public static final ConfigOption<String> CHANGELOG_MODE =
            ConfigOptions.key("changelog-mode")
                    .stringType()
                    .defaultValue("upsert")
                    .withDescription(
                            "mesh-debezium-avro only: 'upsert' (UPDATE_AFTER/DELETE, any REPLICA"
                                    + " IDENTITY, needs a PRIMARY KEY) or 'all' (INSERT,"
                                    + " UPDATE_BEFORE/AFTER, DELETE; needs REPLICA IDENTITY FULL).");
}
