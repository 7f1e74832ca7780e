package prometheus_test

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/bulwark-go/bulwark/breaker"
	"github.com/bulwark-go/bulwark/pipeline"
	bulwarkprom "github.com/bulwark-go/bulwark/prometheus"
)

// Register a Collector over a stack; after two failures the circuit is
// open and the third call is rejected. (In a service, serve the registry
// with promhttp.HandlerFor.)
func Example() {
	stack, err := pipeline.New(pipeline.Config{Breaker: &breaker.Config{FailureThreshold: 2}})
	if err != nil {
		panic(err)
	}
	coll, err := bulwarkprom.NewCollector(stack, bulwarkprom.Config{})
	if err != nil {
		panic(err)
	}
	defer coll.Close()
	reg := prometheus.NewRegistry()
	reg.MustRegister(coll)

	ctx := context.Background()
	down := func(context.Context) (string, error) { return "", errors.New("503") }
	for range 3 {
		_, _ = pipeline.Do(ctx, stack, "notion", down)
	}

	err = testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP bulwark_calls_total Calls through an executor's circuit breaker, by outcome (success, failure, rejected).
# TYPE bulwark_calls_total counter
bulwark_calls_total{executor="notion",outcome="failure"} 2
bulwark_calls_total{executor="notion",outcome="rejected"} 1
# HELP bulwark_circuit_state State of the executor's circuit: 0 closed, 1 half-open, 2 open.
# TYPE bulwark_circuit_state gauge
bulwark_circuit_state{executor="notion"} 2
`), "bulwark_calls_total", "bulwark_circuit_state")
	fmt.Println("series as expected:", err == nil)
	// Output:
	// series as expected: true
}
