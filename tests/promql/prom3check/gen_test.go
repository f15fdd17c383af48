package prom3check

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/promqltest"
)

func ff(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

func TestGen(t *testing.T) {
	fn := os.Getenv("PQL_GEN")
	if fn == "" {
		t.Skip()
	}
	data, err := os.ReadFile(fn)
	if err != nil {
		t.Fatal(err)
	}
	engine := promqltest.NewTestEngine(t, false, 0, promqltest.DefaultMaxSamplesPerQuery)
	var out strings.Builder
	lines := strings.Split(string(data), "\n")
	var loads []string
	for i := 0; i < len(lines); i++ {
		raw := lines[i]
		l := strings.TrimSpace(raw)
		if l == "clear" {
			loads = nil
		}
		if strings.HasPrefix(l, "load") {
			j := i + 1
			for j < len(lines) && strings.TrimSpace(lines[j]) != "" {
				j++
			}
			loads = append(loads, strings.Join(lines[i:j], "\n"))
			out.WriteString(strings.Join(lines[i:j], "\n") + "\n")
			i = j - 1
			continue
		}
		if !strings.HasPrefix(l, "eval instant at ") {
			out.WriteString(raw + "\n")
			continue
		}
		rest := strings.TrimPrefix(l, "eval instant at ")
		sp := strings.IndexByte(rest, ' ')
		d, err := time.ParseDuration(rest[:sp])
		if err != nil {
			t.Fatal(err)
		}
		expr := rest[sp+1:]
		st := promqltest.LoadedStorage(t, strings.Join(loads, "\n\n")+"\n")
		q, err := engine.NewInstantQuery(context.Background(), st, nil, expr, time.Unix(0, 0).Add(d))
		out.WriteString(raw + "\n")
		if err != nil {
			out.WriteString("  expect fail msg: " + err.Error() + "\n")
			st.Close()
			continue
		}
		res := q.Exec(context.Background())
		if res.Err != nil {
			out.WriteString("  expect fail msg: " + res.Err.Error() + "\n")
		} else {
			warns, infos := res.Warnings.AsStrings(expr, 0, 0)
			if len(warns) == 0 {
				out.WriteString("  expect no_warn\n")
			}
			for _, w := range warns {
				out.WriteString("  expect warn msg: " + w + "\n")
			}
			if len(infos) == 0 {
				out.WriteString("  expect no_info\n")
			}
			for _, w := range infos {
				out.WriteString("  expect info msg: " + w + "\n")
			}
			switch v := res.Value.(type) {
			case promql.Scalar:
				out.WriteString("  " + ff(v.V) + "\n")
			case promql.Vector:
				for _, s := range v {
					if s.H != nil {
						out.WriteString("  " + s.Metric.String() + " " + s.H.TestExpression() + "\n")
					} else {
						out.WriteString("  " + s.Metric.String() + " " + ff(s.F) + "\n")
					}
				}
			default:
				out.WriteString(fmt.Sprintf("  # unhandled %T\n", v))
			}
		}
		q.Close()
		st.Close()
	}
	os.WriteFile(fn+".out", []byte(out.String()), 0o644)
}
