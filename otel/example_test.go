package otel_test

import (
	"context"
	"errors"
	"fmt"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/bulwark-go/bulwark/breaker"
	bulwarkotel "github.com/bulwark-go/bulwark/otel"
	"github.com/bulwark-go/bulwark/pipeline"
)

// Instrument a stack, make calls, and read what the MeterProvider
// collected: calls by outcome and the circuit state.
func Example() {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))

	stack, err := pipeline.New(pipeline.Config{Breaker: &breaker.Config{FailureThreshold: 2}})
	if err != nil {
		panic(err)
	}
	inst, err := bulwarkotel.Instrument(stack, bulwarkotel.Config{MeterProvider: mp})
	if err != nil {
		panic(err)
	}
	defer inst.Close()

	ctx := context.Background()
	down := func(context.Context) (string, error) { return "", errors.New("503") }
	for range 3 { // two failures open the circuit; the third call is rejected
		_, _ = pipeline.Do(ctx, stack, "notion", down)
	}

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(ctx, &rm); err != nil {
		panic(err)
	}
	for _, m := range rm.ScopeMetrics[0].Metrics {
		switch d := m.Data.(type) {
		case metricdata.Sum[int64]:
			if m.Name == "bulwark.calls" {
				for _, p := range d.DataPoints {
					outcome, _ := p.Attributes.Value("outcome")
					fmt.Println(m.Name, outcome.AsString(), p.Value)
				}
			}
		case metricdata.Gauge[int64]:
			fmt.Println(m.Name, d.DataPoints[0].Value)
		}
	}
	// Unordered output:
	// bulwark.calls failure 2
	// bulwark.calls rejected 1
	// bulwark.circuit.state 2
}
