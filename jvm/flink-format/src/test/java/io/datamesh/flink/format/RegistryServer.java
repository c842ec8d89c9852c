package io.datamesh.flink.format;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;

import java.io.IOException;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A tiny in-process schema registry speaking the part of the Confluent REST API the format uses
 * ({@code GET /schemas/ids/{id}}, {@code POST /subjects/{subject}/versions}), on a loopback port.
 * It logs every request, so tests can count what the client's caches saved, and can be told to
 * answer 5xx a number of times or to answer like a wrong URL (bare 404).
 */
final class RegistryServer implements AutoCloseable {
    private static final ObjectMapper JSON = new ObjectMapper();

    private final HttpServer server;
    /** A base path of its own: clients (and their caches) are shared per URL within a JVM. */
    private final String base = "/registry-" + java.util.UUID.randomUUID();
    private final Map<Integer, String> schemas = new ConcurrentHashMap<>();
    private final Map<Integer, String> types = new ConcurrentHashMap<>();
    private final Map<String, Integer> ids = new ConcurrentHashMap<>();
    private final AtomicInteger nextId = new AtomicInteger(100);
    final List<String> requests = new CopyOnWriteArrayList<>();
    /** Answer this many requests with HTTP 503 before serving again. */
    final AtomicInteger failures = new AtomicInteger();
    /** Answer every request with a bare 404 (no registry error code), like a wrong base URL. */
    volatile boolean wrongUrl;

    RegistryServer() throws IOException {
        server = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 0);
        server.createContext("/", this::handle);
        server.start();
    }

    String url() {
        return "http://127.0.0.1:" + server.getAddress().getPort() + base;
    }

    /** Store {@code schema} under a fresh id (as another producer would have registered it). */
    int add(String schema) {
        return add(schema, "AVRO");
    }

    int add(String schema, String type) {
        int id = nextId.getAndIncrement();
        schemas.put(id, schema);
        types.put(id, type);
        return id;
    }

    long count(String method, String pathPrefix) {
        String prefix = method + " " + pathPrefix;
        return requests.stream().filter(r -> r.startsWith(prefix)).count();
    }

    private void handle(HttpExchange exchange) throws IOException {
        String method = exchange.getRequestMethod();
        String path = exchange.getRequestURI().getRawPath();
        path = path.startsWith(base) ? path.substring(base.length()) : path;
        String body = new String(exchange.getRequestBody().readAllBytes(), StandardCharsets.UTF_8);
        requests.add(method + " " + path);
        if (failures.getAndUpdate(n -> Math.max(0, n - 1)) > 0) {
            reply(exchange, 503, "{\"error_code\":50301,\"message\":\"unavailable\"}");
            return;
        }
        if (wrongUrl) {
            reply(exchange, 404, "<html>Not Found</html>");
            return;
        }
        if (method.equals("GET") && path.startsWith("/schemas/ids/")) {
            int id = Integer.parseInt(path.substring("/schemas/ids/".length()));
            String schema = schemas.get(id);
            if (schema == null) {
                reply(exchange, 404, "{\"error_code\":40403,\"message\":\"Schema not found\"}");
                return;
            }
            reply(exchange, 200, JSON.writeValueAsString(Map.of("schema", schema, "schemaType", types.get(id))));
            return;
        }
        if (method.equals("POST") && path.startsWith("/subjects/") && path.endsWith("/versions")) {
            String subject = URLDecoder.decode(
                    path.substring("/subjects/".length(), path.length() - "/versions".length()),
                    StandardCharsets.UTF_8);
            String schema = JSON.readTree(body).get("schema").asText();
            int id = ids.computeIfAbsent(subject + "\n" + schema, k -> add(schema));
            reply(exchange, 200, "{\"id\":" + id + "}");
            return;
        }
        reply(exchange, 404, "{\"error_code\":404,\"message\":\"no route\"}");
    }

    private static void reply(HttpExchange exchange, int status, String body) throws IOException {
        byte[] bytes = body.getBytes(StandardCharsets.UTF_8);
        exchange.getResponseHeaders().add("Content-Type", RegistryClient.MEDIA_TYPE);
        exchange.sendResponseHeaders(status, bytes.length);
        try (OutputStream out = exchange.getResponseBody()) {
            out.write(bytes);
        }
    }

    @Override
    public void close() {
        server.stop(0);
    }
}
