package io.datamesh.flink.format;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.apache.avro.Schema;

import java.io.IOException;
import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Base64;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Minimal client of the Confluent Schema Registry REST API over {@code java.net.http}.
 *
 * <p>Schemas by id are immutable, so they are cached forever; so is the id of a schema registered
 * under a subject. One client (and its caches) is shared per registry URL and credentials within a
 * TaskManager. Transport errors and 5xx answers are retried with backoff and then surface as plain
 * {@link IOException}s (transient); an unknown schema id is a {@link PoisonMessageException}.
 */
final class RegistryClient {
    static final String MEDIA_TYPE = "application/vnd.schemaregistry.v1+json";
    private static final int ATTEMPTS = 6;
    private static final int SCHEMA_NOT_FOUND = 40403;
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final Map<String, RegistryClient> SHARED = new ConcurrentHashMap<>();
    private static final Pattern ENV_REFERENCE =
            Pattern.compile("^\\$\\{env:([A-Za-z_][A-Za-z0-9_]*)\\}$");

    private final String url;
    private final String authorization;
    private final HttpClient http;
    private final Map<Integer, Schema> schemasById = new ConcurrentHashMap<>();
    private final Map<String, Integer> idsBySubjectAndSchema = new ConcurrentHashMap<>();

    private RegistryClient(String url, String configuredUserInfo) {
        this.url = url.endsWith("/") ? url.substring(0, url.length() - 1) : url;
        String userInfo = resolve(configuredUserInfo);
        this.authorization =
                userInfo == null || userInfo.isEmpty()
                        ? null
                        : "Basic "
                                + Base64.getEncoder()
                                        .encodeToString(userInfo.getBytes(StandardCharsets.UTF_8));
        // HTTP/1.1: the default h2c upgrade attempt makes some servers (uvicorn) drop the body.
        this.http =
                HttpClient.newBuilder()
                        .version(HttpClient.Version.HTTP_1_1)
                        .connectTimeout(Duration.ofSeconds(5))
                        .build();
    }

    /**
     * {@code ${env:NAME}} is read from this process's environment (so the secret is in neither the
     * SQL nor the job graph, like Kafka's EnvVarConfigProvider); any other value is used as is.
     */
    static String resolve(String userInfo) {
        Matcher env = ENV_REFERENCE.matcher(userInfo == null ? "" : userInfo);
        if (!env.matches()) {
            return userInfo;
        }
        String value = System.getenv(env.group(1));
        if (value == null || value.isEmpty()) {
            throw new IllegalStateException(
                    "schema registry credentials: environment variable "
                            + env.group(1)
                            + " is not set in this Flink process; set it on the JobManager and"
                            + " TaskManagers (the embedded cluster inherits `mesh up`'s"
                            + " environment)");
        }
        return value;
    }

    /** The shared client of one registry (and one set of credentials). */
    static RegistryClient shared(String url, String userInfo) {
        return SHARED.computeIfAbsent(url + "|" + userInfo, k -> new RegistryClient(url, userInfo));
    }

    /** The writer schema registered under {@code id}. */
    Schema schemaById(int id) throws IOException {
        Schema cached = schemasById.get(id);
        if (cached != null) {
            return cached;
        }
        HttpResponse<String> resp = send(get("/schemas/ids/" + id));
        if (resp.statusCode() == 404 && errorCode(resp) == SCHEMA_NOT_FOUND) {
            // Only the registry's own "schema not found" code: a bare 404 (wrong URL or path)
            // must fail the job rather than send every message to the dead-letter topic.
            throw new PoisonMessageException(
                    "schema id " + id + " is unknown to the registry at " + url, id);
        }
        requireOk(resp, "read schema id " + id);
        JsonNode body = JSON.readTree(resp.body());
        String type = body.path("schemaType").asText("AVRO");
        if (!"AVRO".equals(type)) {
            throw new PoisonMessageException(
                    "schema id " + id + " is a " + type + " schema, not Avro", id);
        }
        Schema schema;
        try {
            schema = new Schema.Parser().parse(body.get("schema").asText());
        } catch (RuntimeException e) {
            throw new PoisonMessageException("schema id " + id + " is not valid Avro", id, e);
        }
        Schema previous = schemasById.putIfAbsent(id, schema);
        return previous != null ? previous : schema;
    }

    /**
     * Register {@code schema} under {@code subject} (idempotent: the registry returns the id of an
     * identical schema) and return its id. A refusal (incompatible, invalid) is not retried.
     */
    int register(String subject, Schema schema) throws IOException {
        String text = schema.toString();
        String key = subject + "\n" + text;
        Integer cached = idsBySubjectAndSchema.get(key);
        if (cached != null) {
            return cached;
        }
        String body = JSON.writeValueAsString(Map.of("schema", text));
        HttpRequest request =
                builder("/subjects/" + URLEncoder.encode(subject, StandardCharsets.UTF_8) + "/versions")
                        .POST(HttpRequest.BodyPublishers.ofString(body))
                        .build();
        HttpResponse<String> resp = send(request);
        if (resp.statusCode() >= 400 && resp.statusCode() < 500) {
            throw new IllegalStateException(
                    "the schema registry at " + url + " refused the schema of subject \"" + subject
                            + "\" (HTTP " + resp.statusCode() + "): " + resp.body()
                            + " -- fix: make the output compatible with the subject's registered"
                            + " versions, or change the subject's compatibility level");
        }
        requireOk(resp, "register a schema under subject \"" + subject + "\"");
        int id = JSON.readTree(resp.body()).get("id").asInt();
        idsBySubjectAndSchema.put(key, id);
        schemasById.putIfAbsent(id, schema);
        return id;
    }

    private HttpRequest get(String path) {
        return builder(path).GET().build();
    }

    private HttpRequest.Builder builder(String path) {
        HttpRequest.Builder b =
                HttpRequest.newBuilder(URI.create(url + path))
                        .timeout(Duration.ofSeconds(15))
                        .header("Accept", MEDIA_TYPE)
                        .header("Content-Type", MEDIA_TYPE);
        if (authorization != null) {
            b.header("Authorization", authorization);
        }
        return b;
    }

    /** Send with retries on transport errors and 5xx; other statuses are returned as they are. */
    private HttpResponse<String> send(HttpRequest request) throws IOException {
        IOException last = null;
        long backoffMs = 200;
        for (int attempt = 1; attempt <= ATTEMPTS; attempt++) {
            try {
                HttpResponse<String> resp =
                        http.send(request, HttpResponse.BodyHandlers.ofString());
                if (resp.statusCode() < 500) {
                    return resp;
                }
                last = new IOException(
                        "schema registry " + url + " answered HTTP " + resp.statusCode() + ": "
                                + resp.body());
            } catch (IOException e) {
                last = e;
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IOException("interrupted while calling the schema registry", e);
            }
            sleep(backoffMs);
            backoffMs = Math.min(backoffMs * 2, 5_000);
        }
        throw new IOException(
                "schema registry " + url + " did not answer " + request.method() + " "
                        + request.uri().getPath() + " after " + ATTEMPTS + " attempts", last);
    }

    private static int errorCode(HttpResponse<String> resp) {
        try {
            return JSON.readTree(resp.body()).path("error_code").asInt(-1);
        } catch (IOException e) {
            return -1;
        }
    }

    private static void requireOk(HttpResponse<String> resp, String action) throws IOException {
        if (resp.statusCode() >= 300) {
            throw new IOException(
                    "schema registry could not " + action + ": HTTP " + resp.statusCode() + ": "
                            + resp.body());
        }
    }

    private static void sleep(long ms) throws IOException {
        try {
            Thread.sleep(ms);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted while waiting to retry the schema registry", e);
        }
    }
}
