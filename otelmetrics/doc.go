// Package otelmetrics exports the statistics of a warmpool.Transport as
// OpenTelemetry metrics.
package otelmetrics
