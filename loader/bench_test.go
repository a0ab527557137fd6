package loader

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"cdpload/examples"
	"cdpload/loader/mapper"
	"cdpload/sink"
	"cdpload/source"
)

// benchInput generates n profile rows in the given format, with realistic widths and some
// non-ASCII text.
func benchInput(format source.Format, n int) []byte {
	var b bytes.Buffer
	if format == source.CSV {
		b.WriteString("customer_id,email,first_name,last_name,tier,city,country,last_order_at,lifetime_value,orders_count,opted_in\n")
	}
	for i := 0; i < n; i++ {
		if format == source.CSV {
			fmt.Fprintf(&b, "C%08d,user.%d@example.com,Zoë,\"O'Brien, Jr\",gold,Zürich,CH,2026-04-%02dT12:00:00Z,%d.50,%d,yes\n",
				i, i, 1+i%28, i%5000, i%90)
		} else {
			fmt.Fprintf(&b, `{"customer_id":"C%08d","email":"user.%d@example.com","first_name":"Zoë","last_name":"O'Brien, Jr","tier":"gold","city":"Zürich","country":"CH","last_order_at":"2026-04-%02dT12:00:00Z","lifetime_value":%d.50,"orders_count":%d,"opted_in":true}`+"\n",
				i, i, 1+i%28, i%5000, i%90)
		}
	}
	return b.Bytes()
}

// BenchmarkRowPath measures the per-row work before the network: parse, map and encode
// the request body. Allocations per row are reported as allocs/op.
func BenchmarkRowPath(b *testing.B) {
	schema, err := sink.ParseSchema(examples.SchemaJSON)
	if err != nil {
		b.Fatal(err)
	}
	for _, format := range []source.Format{source.CSV, source.JSONL} {
		b.Run(string(format), func(b *testing.B) {
			const rows = 20000
			data := benchInput(format, rows)
			b.SetBytes(int64(len(data) / rows))
			b.ReportAllocs()
			var (
				in  *source.Reader
				mp  *mapper.Mapper
				buf []byte
			)
			open := func() {
				in, err = source.NewReader(bytes.NewReader(data), "bench."+string(format), source.Options{}, source.Position{})
				if err != nil {
					b.Fatal(err)
				}
				mp, err = mapper.New(schema, format, in.Header(), nil, mapper.Options{})
				if err != nil {
					b.Fatal(err)
				}
			}
			open()
			for b.Loop() {
				rec, err := in.Next()
				if err == io.EOF {
					b.StopTimer()
					open()
					b.StartTimer()
					rec, err = in.Next()
				}
				if err != nil || rec.Err != nil {
					b.Fatal(err, rec.Err)
				}
				if buf, _, err = mp.Map(&rec, buf[:0]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// nopSender accepts every upsert after latency: with it, a run measures the pipeline
// alone (reader, queues, workers, pacer, recorder, checkpoint), without the network.
type nopSender struct{ latency time.Duration }

func (s nopSender) Upsert(context.Context, []byte) sink.Result {
	if s.latency > 0 {
		time.Sleep(s.latency)
	}
	return sink.Result{Outcome: sink.Accepted, Status: 200}
}

// BenchmarkRunPipeline measures a whole run per row, minus the network: what the loader
// adds to each request's own cost. One op is one row. With instant
// answers the reader is the bottleneck; with 1 ms answers the 32 workers are, as against
// a real API, and cpu-ns/row (user+sys of the process) is the figure that counts.
func BenchmarkRunPipeline(b *testing.B) {
	schema, err := sink.ParseSchema(examples.SchemaJSON)
	if err != nil {
		b.Fatal(err)
	}
	for _, latency := range []time.Duration{0, time.Millisecond} {
		for _, format := range []source.Format{source.CSV, source.JSONL} {
			b.Run(fmt.Sprintf("%s/latency=%s", format, latency), func(b *testing.B) {
				// One op is one row: each round of the benchmark loads a file of b.N rows.
				path := filepath.Join(b.TempDir(), "bench."+string(format))
				if err := os.WriteFile(path, benchInput(format, b.N), 0o600); err != nil {
					b.Fatal(err)
				}
				b.ReportAllocs()
				b.ResetTimer()
				before := cpuTime()
				sum, err := Run(context.Background(), Config{
					Path:    path,
					Schema:  func(context.Context) (sink.Schema, error) { return schema, nil },
					Sender:  nopSender{latency: latency},
					Workers: 32,
					Restart: true,
				})
				if err != nil || sum.Accepted != int64(b.N) {
					b.Fatalf("run: %v, %d of %d rows accepted", err, sum.Accepted, b.N)
				}
				b.ReportMetric(float64(cpuTime()-before)/float64(b.N), "cpu-ns/row")
			})
		}
	}
}

// cpuTime is the process's user+sys CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
