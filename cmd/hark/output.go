package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/harkhq/hark/engine"
)

// jsonOut writes responses for scripts: protojson with every field present,
// so a script can rely on `identifyEnabled` existing when it is false.
var jsonOut = protojson.MarshalOptions{Multiline: true, Indent: "  ", EmitUnpopulated: true}

// jsonLine is jsonOut on one line, for streams: one message per line.
var jsonLine = protojson.MarshalOptions{EmitUnpopulated: true}

// printJSON writes m as indented protojson. Commands that create, get or
// change one resource pass the resource itself, not the response that wraps
// it, as REST and kubectl print it; lists print their response (the items and
// nextPageToken).
func (a *api) printJSON(m proto.Message) error {
	b, err := jsonOut.Marshal(m)
	if err != nil {
		return fmt.Errorf("encode the response: %w", err)
	}
	_, err = fmt.Fprintf(a.out, "%s\n", b)
	return err
}

// printJSONLine writes m as protojson on one line.
func (a *api) printJSONLine(m proto.Message) error {
	b, err := jsonLine.Marshal(m)
	if err != nil {
		return fmt.Errorf("encode the response: %w", err)
	}
	_, err = fmt.Fprintf(a.out, "%s\n", b)
	return err
}

// table writes rows under header as aligned columns.
func table(w io.Writer, header []string, rows [][]string) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, r := range rows {
		for i := range r {
			r[i] = cell(r[i])
		}
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

// field is one line of a detail view.
type field struct{ name, value string }

// fields writes a detail view: "Name:  value" lines, aligned.
func fields(w io.Writer, fs ...field) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, f := range fs {
		fmt.Fprintf(tw, "%s:\t%s\n", f.name, cell(f.value))
	}
	return tw.Flush()
}

// cell keeps one value on one line of a table: a cell with a tab or newline
// would break the columns.
func cell(s string) string {
	if s == "" {
		return "-"
	}
	return strings.NewReplacer("\t", " ", "\n", " ", "\r", " ").Replace(s)
}

// fmtTime shows a timestamp in local time, to the second.
func fmtTime(ts *timestamppb.Timestamp) string {
	if ts == nil {
		return ""
	}
	return ts.AsTime().Local().Format("2006-01-02 15:04:05")
}

// enumName is an enum value without its type prefix, in lower case:
// SOURCE_EVENT_STATUS_PROCESSED → processed.
func enumName(v fmt.Stringer, prefix string) string {
	s := strings.TrimPrefix(v.String(), prefix)
	if s == "UNSPECIFIED" {
		return ""
	}
	return strings.ToLower(s)
}

// parseEnum finds the value named s, given with or without its prefix, in
// any case: processed, PROCESSED and SOURCE_EVENT_STATUS_PROCESSED all work.
func parseEnum(flag, s, prefix string, values map[string]int32) (int32, error) {
	var names []string
	for name, v := range values {
		short := strings.TrimPrefix(name, prefix)
		if short == "UNSPECIFIED" {
			continue
		}
		if strings.EqualFold(s, short) || strings.EqualFold(s, name) {
			return v, nil
		}
		names = append(names, strings.ToLower(short))
	}
	sort.Strings(names)
	return 0, usageError{fmt.Errorf("--%s %q is not one of %s", flag, s, strings.Join(names, ", ")), ""}
}

// onOff is a flag that reads on/off (and true/false, yes/no, 1/0); given
// alone, as --identify, it means on.
type onOff struct{ v *bool }

func (o onOff) String() string {
	if o.v == nil || !*o.v {
		return "off"
	}
	return "on"
}

func (o onOff) Set(s string) error {
	switch strings.ToLower(s) {
	case "on", "true", "yes", "1":
		*o.v = true
	case "off", "false", "no", "0":
		*o.v = false
	default:
		return fmt.Errorf("want on or off, not %q", s)
	}
	return nil
}

func (onOff) Type() string { return "on|off" }

// onOffFlag defines an on|off flag.
func onOffFlag(cmd *cobra.Command, p *bool, name, usage string) {
	cmd.Flags().Var(onOff{p}, name, usage)
	cmd.Flags().Lookup(name).NoOptDefVal = "on"
}

// onOffText shows a bool as on or off.
func onOffText(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

// parseDuration is time.ParseDuration that also reads days, alone or
// before the rest ("7d", "30d", "1.5d", "1d12h"), since idempotency windows
// and retention are counted in days. Durations on hark's command line are
// never negative.
func parseDuration(s string) (time.Duration, error) {
	d, err := parseDays(s)
	if err != nil {
		return 0, err
	}
	if d < 0 {
		return 0, fmt.Errorf("duration %q is negative", s)
	}
	return d, nil
}

// daysPrefix matches a duration that starts with days: "30d", "1.5d12h".
var daysPrefix = regexp.MustCompile(`^(\d+(?:\.\d+)?)d(.*)$`)

func parseDays(s string) (time.Duration, error) {
	m := daysPrefix.FindStringSubmatch(s)
	if m == nil {
		return time.ParseDuration(s)
	}
	days, err := strconv.ParseFloat(m[1], 64)
	if err != nil || days > 100*365 {
		return 0, fmt.Errorf("time: invalid duration %q", s)
	}
	d := time.Duration(days * float64(24*time.Hour))
	if m[2] != "" {
		more, err := time.ParseDuration(m[2])
		if err != nil || more < 0 {
			return 0, fmt.Errorf("time: invalid duration %q", s)
		}
		d += more
	}
	return d, nil
}

// fmtDuration shows a duration the way people write it on hark's command
// line (engine.HumanDuration: 30d, 36h, 90m, 90s — not Go's 720h0m0s); zero
// shows as nothing. What it prints reads back through parseDuration.
func fmtDuration(d time.Duration) string {
	if d == 0 {
		return ""
	}
	return engine.HumanDuration(d)
}

// durationValue is a duration flag that reads days (parseDuration) and shows
// its default as fmtDuration does.
type durationValue struct{ p *time.Duration }

func (v durationValue) String() string {
	if v.p == nil {
		return ""
	}
	return fmtDuration(*v.p)
}

func (v durationValue) Set(s string) error {
	d, err := parseDuration(s)
	if err != nil {
		return err
	}
	*v.p = d
	return nil
}

func (durationValue) Type() string { return "duration" }

// durationVar defines a duration flag on f that takes days too ("7d").
func durationVar(f *pflag.FlagSet, p *time.Duration, name string, def time.Duration, usage string) {
	*p = def
	f.Var(durationValue{p}, name, usage)
}

// keyValues parses repeated key=value flags.
func keyValues(flag string, kvs []string) (map[string]string, error) {
	if len(kvs) == 0 {
		return nil, nil
	}
	out := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || strings.TrimSpace(k) == "" {
			return nil, usageError{fmt.Errorf("--%s %q: want key=value", flag, kv), ""}
		}
		out[strings.TrimSpace(k)] = v
	}
	return out, nil
}

// jsonArg reads a JSON flag value: the text itself, or, with a leading @,
// the file it names (@- is standard input).
func jsonArg(flag, s string) ([]byte, error) {
	name, ok := strings.CutPrefix(s, "@")
	if !ok {
		return []byte(s), nil
	}
	if name == "-" {
		return io.ReadAll(os.Stdin)
	}
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("--%s: %w", flag, err)
	}
	return b, nil
}

// jsonObject parses a JSON object flag value (see jsonArg).
func jsonObject(flag, s string) (*structpb.Struct, error) {
	b, err := jsonArg(flag, s)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil || m == nil {
		return nil, usageError{fmt.Errorf("--%s must be a JSON object: %s", flag, jsonErrorText(err)), ""}
	}
	st, err := structpb.NewStruct(m)
	if err != nil {
		return nil, usageError{fmt.Errorf("--%s: %w", flag, err), ""}
	}
	return st, nil
}

func jsonErrorText(err error) string {
	if err == nil {
		return "got null"
	}
	return err.Error()
}

// compactJSON shows a struct value on one line, for tables.
func compactJSON(m proto.Message) string {
	if m == nil {
		return ""
	}
	b, err := protojson.Marshal(m)
	if err != nil {
		return ""
	}
	// protojson adds random spaces to keep people from relying on its
	// format; a table cell reads better without them.
	var v any
	if json.Unmarshal(b, &v) == nil {
		if c, err := json.Marshal(v); err == nil {
			return string(c)
		}
	}
	return string(b)
}

// indentedJSON shows a message as indented JSON, for detail views.
func indentedJSON(m proto.Message) string {
	if m == nil {
		return "null"
	}
	b, err := protojson.Marshal(m)
	if err != nil {
		return ""
	}
	var v any
	if json.Unmarshal(b, &v) != nil {
		return string(b)
	}
	c, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return string(b)
	}
	return string(c)
}

// pageLimit is the --limit flag of list commands.
const pageLimitUsage = "show at most this many; 0 shows all"

// maxPage is the largest page the server hands out.
const maxPage = 1000

// collect reads pages until it has limit items (0: all) or the list ends. It
// returns the items and, when it stopped early, the token of the next page.
func collect[T any](limit int, fetch func(size int32, token string) ([]T, string, error)) ([]T, string, error) {
	var out []T
	token := ""
	for {
		size := maxPage
		if limit > 0 {
			size = min(limit-len(out), maxPage)
		}
		items, next, err := fetch(int32(size), token)
		if err != nil {
			return nil, "", err
		}
		out = append(out, items...)
		token = next
		if token == "" || (limit > 0 && len(out) >= limit) {
			return out, token, nil
		}
	}
}

// moreNote tells a table's reader that the list goes on.
func (a *api) moreNote(next string, shown int) {
	if next != "" {
		fmt.Fprintf(a.errOut, "(showing the first %d; --limit 0 shows all)\n", shown)
	}
}

// joinComma lists values in a table cell.
func joinComma(s []string) string { return strings.Join(s, ", ") }

// streamRow formats one row of a streamed table. A stream cannot be aligned
// by looking at every row first, so columns have fixed minimum widths (the
// usual width of their values) and grow when a value is longer.
func streamRow(widths []int, row []string) string {
	var b strings.Builder
	for i, v := range row {
		v = cell(v)
		if i == len(row)-1 {
			b.WriteString(v)
			break
		}
		w := 0
		if i < len(widths) {
			w = widths[i]
		}
		fmt.Fprintf(&b, "%-*s  ", w, v)
	}
	return strings.TrimRight(b.String(), " ")
}
