// Package prom3check runs PromQL test files through Prometheus 3's own engine and promqltest
// (github.com/prometheus/prometheus v0.316.0), to establish and re-check the expected values of
// Ringtail's tests/promql/testdata. Not part of the build; needs Go and the module proxy:
//
//	cd tests/promql/prom3check && go mod tidy
//	PQL_FILES=$PWD/../testdata/quantile_edges.test go test -count=1 -run TestFiles .
//	PQL_GEN=/tmp/new.in go test -count=1 -run TestGen .   # writes /tmp/new.in.out
//
// TestFiles runs each eval of the files named by $PQL_FILES (comma separated) alone with the
// load blocks before it, so that every eval Prometheus 3 disagrees with is reported, not only
// the first. TestGen reads $PQL_GEN (load blocks, clear, comments and "eval instant at T EXPR"
// lines without expectations) and writes the same with Prometheus 3's answers and annotations
// as expectations to $PQL_GEN.out.
package prom3check

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/promql/promqltest"
)

func TestFiles(t *testing.T) {
	engine := promqltest.NewTestEngine(t, false, 0, promqltest.DefaultMaxSamplesPerQuery)
	for _, fn := range strings.Split(os.Getenv("PQL_FILES"), ",") {
		data, err := os.ReadFile(fn)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(string(data), "\n")
		var loads []string
		for i := 0; i < len(lines); i++ {
			l := strings.TrimSpace(lines[i])
			if l == "clear" {
				loads = nil
				continue
			}
			if !strings.HasPrefix(l, "load") && !strings.HasPrefix(l, "eval") {
				continue
			}
			j := i + 1
			for j < len(lines) && strings.TrimSpace(lines[j]) != "" && !strings.HasPrefix(strings.TrimSpace(lines[j]), "#") {
				j++
			}
			block := strings.Join(lines[i:j], "\n")
			if strings.HasPrefix(l, "load") {
				loads = append(loads, block)
			} else {
				input := strings.Join(loads, "\n\n") + "\n\n" + block + "\n"
				t.Run(fmt.Sprintf("%s:%d", fn, i+1), func(t *testing.T) {
					promqltest.RunTest(t, input, engine)
				})
			}
			i = j - 1
		}
	}
}
