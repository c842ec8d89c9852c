package io.datamesh.flink.format;

import org.apache.flink.api.common.serialization.DeserializationSchema;
import org.apache.flink.api.common.serialization.SerializationSchema;
import org.apache.flink.metrics.Counter;
import org.apache.flink.metrics.MetricGroup;
import org.apache.flink.metrics.SimpleCounter;
import org.apache.flink.metrics.groups.UnregisteredMetricsGroup;
import org.apache.flink.util.SimpleUserCodeClassLoader;
import org.apache.flink.util.UserCodeClassLoader;

import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/** What a task hands a (de)serialization schema's {@code open}; keeps the counters it made. */
final class TestContext
        implements SerializationSchema.InitializationContext,
                DeserializationSchema.InitializationContext {
    final Map<String, SimpleCounter> counters = new ConcurrentHashMap<>();

    private final MetricGroup metrics =
            new UnregisteredMetricsGroup() {
                @Override
                public Counter counter(String name) {
                    return counters.computeIfAbsent(name, n -> new SimpleCounter());
                }
            };

    long count(String name) {
        SimpleCounter counter = counters.get(name);
        return counter == null ? -1 : counter.getCount();
    }

    @Override
    public MetricGroup getMetricGroup() {
        return metrics;
    }

    @Override
    public UserCodeClassLoader getUserCodeClassLoader() {
        return SimpleUserCodeClassLoader.create(TestContext.class.getClassLoader());
    }
}
