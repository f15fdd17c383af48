// Prints Go's strconv.FormatFloat(v, 'e'|'f'|'g', -1, 64) and Prometheus' JSON form for each
// float64 given as 16 hex digits of its bits, one per line: the reference that
// tests/integration/floatfmt_go.sh compares common/floatfmt.c with.
package main

import (
	"bufio"
	"fmt"
	"math"
	"os"
	"strconv"
)

func main() {
	in := bufio.NewScanner(os.Stdin)
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	for in.Scan() {
		b, err := strconv.ParseUint(in.Text(), 16, 64)
		if err != nil {
			panic(err)
		}
		v := math.Float64frombits(b)
		// util/jsonutil.MarshalFloat's choice of layout
		j := byte('f')
		if a := math.Abs(v); a != 0 && (a < 1e-6 || a >= 1e21) {
			j = 'e'
		}
		fmt.Fprintf(out, "%s %s %s %s\n", strconv.FormatFloat(v, 'e', -1, 64), strconv.FormatFloat(v, 'f', -1, 64),
			strconv.FormatFloat(v, 'g', -1, 64), strconv.FormatFloat(v, j, -1, 64))
	}
}
