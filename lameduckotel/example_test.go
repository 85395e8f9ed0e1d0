package lameduckotel_test

import (
	"context"
	"log"
	"net/http"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/b583c413/lameduck"
	"github.com/b583c413/lameduck/lameduckotel"
)

// A service that exports its Runner's figures through the OpenTelemetry
// SDK. The provider is shut down after Run has returned, so that its last
// collection carries the stop's outcome and counts. A program would give
// the provider a periodic reader with an OTLP exporter; the manual reader
// here keeps the example self-contained.
func ExampleRegister() {
	provider := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	srv := &http.Server{Addr: "127.0.0.1:0", Handler: http.NotFoundHandler()}
	r, err := lameduck.NewRunner(lameduck.FromHTTP(srv), lameduck.Period(10*time.Second))
	if err != nil {
		log.Fatal(err)
	}
	reg, err := lameduckotel.Register(provider.Meter("lameduck"), r)
	if err != nil {
		log.Fatal(err)
	}
	defer reg.Unregister()
	ctx, stop := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer stop()
	err = r.Run(ctx)
	provider.Shutdown(context.Background()) // the last collection sees the outcome
	if err != nil {
		log.Print(err)
	}
}
