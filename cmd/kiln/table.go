package main

import (
	"bytes"
	"io"
	"strings"
	"text/tabwriter"
)

// writeTable prints rows as aligned columns (two spaces apart, each line
// prefixed by indent) without trailing blanks, whatever cells are empty.
func writeTable(w io.Writer, indent string, rows [][]string) error {
	var buf bytes.Buffer
	tw := tabwriter.NewWriter(&buf, 1, 4, 2, ' ', 0)
	for _, r := range rows {
		io.WriteString(tw, indent+strings.Join(r, "\t")+"\n")
	}
	tw.Flush()
	var out strings.Builder
	for _, line := range strings.SplitAfter(buf.String(), "\n") {
		if line == "" {
			continue
		}
		out.WriteString(strings.TrimRight(line, " \n") + "\n")
	}
	_, err := io.WriteString(w, out.String())
	return err
}
